package imagebuild

import (
	"errors"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestBuildStateEnd: a build's runner state makes each value once, and its end releases everything it
// holds, last acquired first, whatever fails, and reports every failure.
func TestBuildStateEnd(t *testing.T) {
	var s buildState
	var released []string
	release := func(name string, err error) func() error {
		return func() error {
			released = append(released, name)
			return err
		}
	}
	errRoot, errLock := errors.New("removing the kept root: busy"), errors.New("closing the lock: bad descriptor")
	made := 0
	mk := func() (any, func() error, error) {
		made++
		return "root", release("root", errRoot), nil
	}
	for range 2 {
		v, err := s.value("overlay", mk)
		require.NoError(t, err)
		assert.Equal(t, "root", v)
	}
	assert.Equal(t, 1, made, "a value is made once per build")
	s.onEnd(release("lock", errLock))
	v, err := s.value("plain", func() (any, func() error, error) { return 7, nil, nil })
	require.NoError(t, err)
	assert.Equal(t, 7, v, "a value without anything to release")
	refused := errors.New("no user namespaces")
	_, err = s.value("refused", func() (any, func() error, error) { return nil, release("refused", nil), refused })
	require.ErrorIs(t, err, refused)

	err = s.end()
	assert.Equal(t, []string{"lock", "root"}, released, "last acquired first; nothing of a value that failed")
	require.ErrorIs(t, err, errRoot)
	require.ErrorIs(t, err, errLock)

	released = nil
	require.NoError(t, s.end(), "an ended state holds nothing")
	assert.Empty(t, released)
	v, err = s.value("overlay", mk)
	require.NoError(t, err)
	assert.Equal(t, "root", v)
	assert.Equal(t, 2, made, "an ended state makes its values again")
}
