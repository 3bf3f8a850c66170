package main

import (
	"go/parser"
	"go/token"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const sample = `package p

import "errors"

var errX = errors.New("x")

func f(a, b int, s string) (int, error) {
	if a < b && s == "" {
		return 0, errX
	}
	a++
	s = s + "!"
	g := func() error { return nil }
	_ = g
	return a - b, nil
}

type T struct{}

func g(p []byte) (int, *T) {
	return len(p), nil
}

func h() (n int, err error) {
	check := func(x int) bool { return x > 0 }
	check(n)
	return n, errors.New("h")
}

func k(c chan int) {
	c <- 1
}
`

func TestMutants(t *testing.T) {
	ms, err := mutants("p.go", []byte(sample))
	require.NoError(t, err)
	var got []string
	for _, m := range ms {
		got = append(got, m.desc)
		// Every mutant is still Go.
		_, err := parser.ParseFile(token.NewFileSet(), "p.go", m.src, 0)
		require.NoError(t, err, "%s:\n%s", m.desc, m.src)
		assert.NotEqual(t, sample, string(m.src))
	}
	assert.Equal(t, []string{
		"if a < b && s == \"\" → if !(…)",
		"< → <=",
		"&& → ||",
		"== → !=",
		"return errX → return nil",
		"delete a++",
		"delete s = s + \"!\"",
		"delete _ = g",
		"- → +",
		"> → >=",
		"delete check(n)",
		"return errors.New(\"h\") → return nil",
		"delete c <- 1",
	}, got)
	assert.Contains(t, string(ms[len(ms)-2].src), `return n, func() error { if false { _ = errors.New("h") }; return nil }()`,
		"an expression is kept, never evaluated, so that its imports and variables stay used")
	assert.Contains(t, string(ms[0].src), `if !(a < b && s == "") {`)
	assert.Equal(t, 8, ms[0].line)
}

func TestPick(t *testing.T) {
	all := make([]mutant, 50)
	for i := range all {
		all[i].line = i
	}
	assert.Len(t, pick(all, 0, 1), 50)
	assert.Len(t, pick(all, 60, 1), 50)
	a, b := pick(all, 10, 7), pick(all, 10, 7)
	assert.Equal(t, a, b, "the same seed picks the same mutants")
	assert.NotEqual(t, a, pick(all, 10, 8))
	small := pick(all, 5, 7)
	assert.Equal(t, a[:5], small, "a smaller sample of one seed is the start of a larger one")
}

func TestPatterns(t *testing.T) {
	assert.Equal(t, []string{"./acr", "./internal/backoff", "./...", "github.com/hpcship/hpcship/acr"},
		patterns([]string{"acr", "internal/backoff", "./...", "github.com/hpcship/hpcship/acr"}))
	assert.True(t, strings.HasPrefix(rel("/nonexistent/x.go"), "/"))
}

func TestSlowTests(t *testing.T) {
	out := []byte(`=== RUN   TestQuick
--- PASS: TestQuick (0.02s)
=== RUN   TestSlow
    --- PASS: TestSlow/sub (1.50s)
--- PASS: TestSlow (1.51s)
--- PASS: TestAtTheLimit (1.00s)
--- PASS: TestJustBelow (0.99s)
--- PASS: FuzzParse (3.20s)
PASS
`)
	assert.Equal(t, []string{"TestSlow", "TestAtTheLimit", "FuzzParse"}, slowTests(out))
	assert.Empty(t, slowTests([]byte("PASS\n")))

	re := regexp.MustCompile(exactly([]string{"TestSlow", "FuzzParse"}))
	assert.True(t, re.MatchString("TestSlow"))
	assert.True(t, re.MatchString("FuzzParse"))
	assert.False(t, re.MatchString("TestSlowly"), "only whole names match")
	assert.False(t, re.MatchString("TestQuick"))
}

func TestSkipping(t *testing.T) {
	assert.Equal(t, "^(TestSlow)$", skipping("", "^(TestSlow)$"))
	assert.Equal(t, "TestHuge|^(TestSlow)$", skipping("TestHuge", "^(TestSlow)$"))
	re := regexp.MustCompile(skipping("TestHuge", exactly([]string{"TestSlow"})))
	assert.True(t, re.MatchString("TestHuge"))
	assert.True(t, re.MatchString("TestSlow"))
	assert.False(t, re.MatchString("TestQuick"))
}
