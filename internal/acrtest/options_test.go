package acrtest

import (
	"fmt"
	"log/slog"
	"runtime"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestOptionLimits has rows at and on both sides of every option's limit, and checks that an accepted
// value is the one the registry then uses.
func TestOptionLimits(t *testing.T) {
	tests := []struct {
		name  string
		opt   Option
		ok    bool
		check func(t *testing.T, o options)
	}{
		{name: "admin", opt: WithAdmin("ci", "pw"), ok: true, check: func(t *testing.T, o options) {
			assert.Equal(t, "ci", o.adminUser)
			assert.Equal(t, "pw", o.adminPassword)
		}},
		{name: "admin without user", opt: WithAdmin("", "pw")},
		{name: "admin without password", opt: WithAdmin("ci", "")},
		{name: "admin as the null GUID", opt: WithAdmin(NullGUID, "pw")},
		{name: "tenant", opt: WithTenant("t1"), ok: true, check: func(t *testing.T, o options) { assert.Equal(t, "t1", o.tenant) }},
		{name: "empty tenant", opt: WithTenant("")},
		{name: "refresh TTL 1ns", opt: WithRefreshTokenTTL(1), ok: true, check: func(t *testing.T, o options) { assert.Equal(t, time.Duration(1), o.refreshTTL) }},
		{name: "refresh TTL 0", opt: WithRefreshTokenTTL(0)},
		{name: "refresh TTL -1ns", opt: WithRefreshTokenTTL(-1)},
		{name: "access TTL 1ns", opt: WithAccessTokenTTL(1), ok: true, check: func(t *testing.T, o options) { assert.Equal(t, time.Duration(1), o.accessTTL) }},
		{name: "access TTL 0", opt: WithAccessTokenTTL(0)},
		{name: "access TTL -1ns", opt: WithAccessTokenTTL(-1)},
		{name: "fault rate 0", opt: WithFaults(0, 3), ok: true, check: func(t *testing.T, o options) {
			assert.Zero(t, o.faultRate)
			assert.EqualValues(t, 3, o.faultSeed)
		}},
		{name: "fault rate 1", opt: WithFaults(1, 4), ok: true, check: func(t *testing.T, o options) { assert.InDelta(t, 1.0, o.faultRate, 0) }},
		{name: "fault rate below 0", opt: WithFaults(-0.001, 1)},
		{name: "fault rate above 1", opt: WithFaults(1.001, 1)},
		{name: "retry-after 0", opt: WithRetryAfter(0), ok: true, check: func(t *testing.T, o options) { assert.Zero(t, o.retryAfter) }},
		{name: "retry-after -1ns", opt: WithRetryAfter(-1)},
		{name: "request delay 0", opt: WithRequestDelay(0), ok: true, check: func(t *testing.T, o options) { assert.Zero(t, o.requestDelay) }},
		{name: "request delay 1ns", opt: WithRequestDelay(1), ok: true, check: func(t *testing.T, o options) { assert.Equal(t, time.Duration(1), o.requestDelay) }},
		{name: "request delay -1ns", opt: WithRequestDelay(-1)},
		{name: "token faults", opt: WithTokenEndpointFaults(), ok: true, check: func(t *testing.T, o options) { assert.True(t, o.tokenFaults) }},
		{name: "blob redirect", opt: WithBlobRedirect(), ok: true, check: func(t *testing.T, o options) { assert.True(t, o.blobRedirect) }},
		{name: "ARM audience disabled", opt: WithARMAudienceDisabled(), ok: true, check: func(t *testing.T, o options) { assert.True(t, o.armAudienceDisabled) }},
		{name: "in memory", opt: WithInMemoryRegistry(), ok: true, check: func(t *testing.T, o options) { assert.True(t, o.inMemory) }},
		{name: "echoed credentials", opt: WithEchoedCredentials(), ok: true, check: func(t *testing.T, o options) { assert.True(t, o.echoCredentials) }},
		{name: "nil logger", opt: WithLogger(nil)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o, err := newOptions([]Option{tt.opt})
			if !tt.ok {
				require.Error(t, err)
				return
			}
			require.NoError(t, err)
			tt.check(t, o)
		})
	}
}

// TestOptionDefaults pins the defaults the option docs state, and that a registry gets a random admin
// password and tenant of its own.
func TestOptionDefaults(t *testing.T) {
	a, err := newOptions(nil)
	require.NoError(t, err)
	b, err := newOptions(nil)
	require.NoError(t, err)
	assert.Equal(t, "admin", a.adminUser)
	assert.Equal(t, 3*time.Hour+15*time.Minute, a.refreshTTL)
	assert.Equal(t, 75*time.Minute, a.accessTTL)
	assert.Equal(t, time.Second, a.retryAfter)
	assert.NotEmpty(t, a.adminPassword)
	assert.NotEqual(t, a.adminPassword, b.adminPassword)
	assert.NotEmpty(t, a.tenant)
	assert.NotEqual(t, a.tenant, b.tenant)
	assert.False(t, a.tokenFaults || a.blobRedirect || a.armAudienceDisabled || a.inMemory || a.echoCredentials)

	l := slog.New(slog.DiscardHandler)
	c, err := newOptions([]Option{WithLogger(l), WithAdmin("u", "p"), WithTenant("t")})
	require.NoError(t, err)
	assert.Same(t, l, c.logger)
	assert.Equal(t, "p", c.adminPassword, "a set password is kept")
	assert.Equal(t, "t", c.tenant, "a set tenant is kept")
}

// TestCredentialOptionLimits covers the credential's options at their limits.
func TestCredentialOptionLimits(t *testing.T) {
	for _, d := range []time.Duration{-time.Minute, -1, 1, time.Hour} {
		var o credentialOptions
		require.NoError(t, WithAADTokenLifetime(d)(&o), d)
		assert.Equal(t, d, o.lifetime)
	}
	require.Error(t, WithAADTokenLifetime(0)(&credentialOptions{}))
	var o credentialOptions
	require.NoError(t, WithAADTenant("t2")(&o))
	assert.Equal(t, "t2", o.tenant)
	require.Error(t, WithAADTenant("")(&credentialOptions{}))
	require.NoError(t, WithUntrustedSigner()(&o))
	assert.True(t, o.untrusted)
}

// fatalTB records the test failure Start reports and ends the goroutine as t.Fatalf does.
type fatalTB struct {
	testing.TB
	msg string
}

func (f *fatalTB) Fatalf(format string, args ...any) {
	f.msg = fmt.Sprintf(format, args...)
	runtime.Goexit()
}

// TestStartRejectsBadOption fails the calling test with the option's error, before anything starts.
func TestStartRejectsBadOption(t *testing.T) {
	for _, opt := range []Option{WithFaults(2, 1), WithAdmin("", ""), WithLogger(nil)} {
		tb := &fatalTB{TB: t}
		done := make(chan *Registry)
		go func() {
			var r *Registry
			defer func() { done <- r }()
			r = Start(tb, WithInMemoryRegistry(), opt)
		}()
		r := <-done
		assert.Nil(t, r)
		assert.Contains(t, tb.msg, "acrtest: ")
		assert.Contains(t, tb.msg, "must", "the option's own error: %s", tb.msg)
	}
}
