package callopt

import (
	"errors"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

type settings struct{ jobs, level int }

const (
	callPush Calls = 1 << iota
	callPull
)

type opt struct{ o Option[settings] }

func (o opt) spec() Option[settings] { return o.o }

func jobs(n int) opt {
	return opt{Option[settings]{Name: "WithJobs", Calls: callPush, Apply: func(s *settings) error {
		if n <= 0 {
			return errors.New("jobs must be positive")
		}
		s.jobs = n
		return nil
	}}}
}

func level(n int) opt {
	return opt{Option[settings]{Name: "WithLevel", Calls: callPush | callPull, Apply: func(s *settings) error {
		s.level = n
		return nil
	}}}
}

func TestApply(t *testing.T) {
	tests := []struct {
		name    string
		call    string
		c       Calls
		opts    []opt
		want    settings
		given   Given
		wantErr string
	}{
		{name: "none", call: "p.Push", c: callPush, want: settings{jobs: 1}, given: Given{}},
		{name: "in order", call: "p.Push", c: callPush, opts: []opt{jobs(2), level(3), jobs(4)},
			want: settings{jobs: 4, level: 3}, given: Given{"WithJobs": true, "WithLevel": true}},
		{name: "shared", call: "p.Pull", c: callPull, opts: []opt{level(5)},
			want: settings{jobs: 1, level: 5}, given: Given{"WithLevel": true}},
		{name: "other call", call: "p.Pull", c: callPull, opts: []opt{level(5), jobs(2)},
			wantErr: "p.Pull: WithJobs: not an option of this call"},
		{name: "invalid", call: "p.Push", c: callPush, opts: []opt{jobs(0)},
			wantErr: "p.Push: WithJobs: jobs must be positive"},
		{name: "zero", call: "p.Push", c: callPush, opts: []opt{level(1), {}},
			wantErr: "p.Push: Option{}: the zero Option is not an option"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := settings{jobs: 1}
			given, err := Apply(tt.call, tt.c, &s, tt.opts, opt.spec)
			if tt.wantErr != "" {
				require.EqualError(t, err, tt.wantErr)
				var e *Error
				require.ErrorAs(t, err, &e)
				assert.Equal(t, tt.call, e.Call)
				assert.Nil(t, given)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tt.want, s)
			assert.Equal(t, tt.given, given)
		})
	}
}

func TestErrorUnwraps(t *testing.T) {
	cause := errors.New("bad")
	err := error(&Error{Call: "p.Push", Option: "WithJobs", Err: cause})
	assert.ErrorIs(t, err, cause)
	assert.EqualError(t, err, "p.Push: WithJobs: bad")
}

func TestExclusive(t *testing.T) {
	g := Given{"WithAuth": true, "WithKeychain": true, "WithJobs": true}
	require.EqualError(t, g.Exclusive("p.Pull", "WithAuth", "WithKeychain"), "p.Pull: WithAuth: cannot be combined with WithKeychain")
	assert.NoError(t, g.Exclusive("p.Pull", "WithAuth", "WithLevel"))
	assert.NoError(t, Given{}.Exclusive("p.Pull", "WithAuth", "WithKeychain"))
}
