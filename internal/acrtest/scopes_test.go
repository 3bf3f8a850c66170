package acrtest

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestParseScopes(t *testing.T) {
	tests := []struct {
		name    string
		values  []string
		want    []accessEntry
		wantErr bool
	}{
		{name: "none"},
		{name: "pull", values: []string{"repository:demo/app:pull"},
			want: []accessEntry{{"repository", "demo/app", []string{"pull"}}}},
		{name: "space-joined as ggcr sends them", values: []string{"repository:a:push,pull repository:b:pull"},
			want: []accessEntry{{"repository", "a", []string{"push", "pull"}}, {"repository", "b", []string{"pull"}}}},
		{name: "repeated as ACR documents", values: []string{"repository:a:pull", "registry:catalog:*"},
			want: []accessEntry{{"repository", "a", []string{"pull"}}, {"registry", "catalog", []string{"*"}}}},
		{name: "colon in name", values: []string{"repository:host:5000/a:pull"},
			want: []accessEntry{{"repository", "host:5000/a", []string{"pull"}}}},
		{name: "no actions", values: []string{"repository:a:"}, wantErr: true},
		{name: "no name", values: []string{"repository::pull"}, wantErr: true},
		{name: "one colon", values: []string{"repository:a"}, wantErr: true},
		{name: "no type", values: []string{":a:pull"}, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseScopes(tt.values)
			if tt.wantErr {
				var re *requestError
				require.ErrorAs(t, err, &re)
				assert.Equal(t, 400, re.status)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tt.want, got)
		})
	}
}

func FuzzParseScopes(f *testing.F) {
	f.Add("repository:demo/app:push,pull registry:catalog:*")
	f.Add("::")
	f.Fuzz(func(t *testing.T, s string) {
		got, err := parseScopes([]string{s})
		if err != nil {
			return
		}
		for _, e := range got {
			assert.NotEmpty(t, e.Type)
			assert.NotEmpty(t, e.Name)
			assert.NotEmpty(t, e.Actions)
		}
	})
}

func TestFaultInjector(t *testing.T) {
	draw := func(rate float64, seed int64, n int) []Fault {
		f := newFaultInjector(rate, seed)
		out := make([]Fault, n)
		for i := range out {
			out[i] = f.next()
		}
		return out
	}
	const n = 4000
	a, b := draw(0.2, 7, n), draw(0.2, 7, n)
	assert.Equal(t, a, b, "same seed, same faults")
	assert.NotEqual(t, a, draw(0.2, 8, n), "another seed, other faults")

	counts := map[Fault]int{}
	for _, f := range a {
		counts[f]++
	}
	faults := n - counts[""]
	assert.InDelta(t, 0.2, float64(faults)/n, 0.03)
	for _, k := range faultKinds() {
		assert.InDelta(t, 0.25, float64(counts[k])/float64(faults), 0.06, "share of %s", k)
	}
	assert.Equal(t, make([]Fault, 10), draw(0, 7, 10), "rate 0 injects nothing")
	assert.NotContains(t, draw(1, 7, 100), Fault(""), "rate 1 fails everything")
}
