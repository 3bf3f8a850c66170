// Command mutate measures how well a package's tests notice a changed line.
//
// For every package it lists small changes ("mutants") of the package's non-test Go files: a flipped
// comparison (== and !=, < and <=, > and >=), a flipped && or ||, + and - swapped, a returned error replaced
// by nil, a statement deleted, an if condition negated. Each mutant is compiled into the package's test
// binary through `go test -c -overlay`, so the source tree is never modified, and the tests are run with a
// timeout of a multiple of the unmutated run, the quick tests first and the slow ones (a second or more in the
// unmutated run) only if the quick ones all pass, so that most mutants are killed in seconds. A mutant is killed when a test fails, survives when all pass,
// times out, or does not compile (those are left out of the score).
//
//	go run ./scripts/mutate [-n 60] [-seed 1] [-integration] [-run REGEXP] [-skip REGEXP] [-at POSITIONS] [-timeout-factor 3] [-v] PKG...
//
// -n samples that many mutants per package (0 runs all), chosen by -seed so a run can be repeated.
// -run passes a regular expression to the test binary's -test.run, to try the mutants against some tests
// only, and -skip one to -test.skip, to leave out tests too slow to run for every mutant (the score is then
// a lower bound: a skipped test could only have killed more). -at keeps, of the sample, only the mutants at the given comma-separated file:line:col positions
// (as the survivors are printed), so that after adding tests one can re-run a sample's survivors alone:
// tests only ever added cannot let a killed mutant survive.
// -integration sets HPCSHIP_INTEGRATION=1 for the test runs so integration tests count (they then fail
// rather than skip where a service is missing). The command prints the score and every survivor as
// file:line with its mutation, and exits 0 whatever the score.
package main

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
)

func main() {
	if err := run(context.Background(), os.Args[1:], os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "mutate:", err)
		os.Exit(2)
	}
}

type config struct {
	n           int
	seed        uint64
	integration bool
	factor      float64
	minTimeout  time.Duration
	verbose     bool
	list        bool
	run, skip   string
	at          map[string]bool
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("mutate", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var c config
	fs.IntVar(&c.n, "n", 0, "mutants to sample per package; 0 runs all")
	fs.Uint64Var(&c.seed, "seed", 1, "seed of the sample")
	fs.BoolVar(&c.integration, "integration", false, "run the tests with HPCSHIP_INTEGRATION=1")
	fs.Float64Var(&c.factor, "timeout-factor", 3, "a mutant times out after this multiple of the unmutated test run")
	fs.DurationVar(&c.minTimeout, "min-timeout", 10*time.Second, "the shortest timeout of a mutant's test run")
	fs.BoolVar(&c.verbose, "v", false, "print every mutant's result as it ends")
	fs.BoolVar(&c.list, "list", false, "list the sampled mutants without running them")
	fs.StringVar(&c.run, "run", "", "run only the tests matching this regular expression (as go test -run)")
	fs.StringVar(&c.skip, "skip", "", "do not run the tests matching this regular expression (as go test -skip); the score is then a lower bound")
	at := fs.String("at", "", "keep only the sampled mutants at these comma-separated file:line:col positions")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: mutate [flags] PKG...")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() == 0 {
		fs.Usage()
		return errors.New("no package given")
	}
	if c.n < 0 {
		return fmt.Errorf("-n must not be negative, got %d", c.n)
	}
	if *at != "" {
		c.at = map[string]bool{}
		for _, pos := range strings.Split(*at, ",") {
			c.at[strings.TrimSpace(pos)] = true
		}
	}
	if c.factor < 1 {
		return fmt.Errorf("-timeout-factor must be at least 1, got %g", c.factor)
	}
	pkgs, err := listPackages(ctx, patterns(fs.Args()))
	if err != nil {
		return err
	}
	work, err := os.MkdirTemp("", "mutate-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(work)
	for _, p := range pkgs {
		if err := mutatePackage(ctx, c, p, work, stdout); err != nil {
			return fmt.Errorf("%s: %w", p.ImportPath, err)
		}
	}
	return nil
}

// patterns turns directories given without ./ (acr, internal/backoff) into relative patterns, and
// leaves relative patterns and import paths (whose first element has a dot) as they are.
func patterns(args []string) []string {
	out := make([]string, len(args))
	for i, a := range args {
		first, _, _ := strings.Cut(a, "/")
		if strings.HasPrefix(a, ".") || strings.HasPrefix(a, "/") || strings.Contains(first, ".") {
			out[i] = a
		} else {
			out[i] = "./" + a
		}
	}
	return out
}

type pkg struct {
	ImportPath   string
	Dir          string
	GoFiles      []string
	TestGoFiles  []string
	XTestGoFiles []string
}

func listPackages(ctx context.Context, patterns []string) ([]pkg, error) {
	cmd := exec.CommandContext(ctx, "go", append([]string{"list", "-json"}, patterns...)...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("go list: %w: %s", err, stderr.Bytes())
	}
	var pkgs []pkg
	dec := json.NewDecoder(bytes.NewReader(out))
	for dec.More() {
		var p pkg
		if err := dec.Decode(&p); err != nil {
			return nil, fmt.Errorf("go list: %w", err)
		}
		pkgs = append(pkgs, p)
	}
	return pkgs, nil
}

type outcome int

const (
	killed outcome = iota
	survived
	timedOut
	compileError
)

func (o outcome) String() string {
	return [...]string{"killed", "survived", "timeout", "compile error"}[o]
}

func mutatePackage(ctx context.Context, c config, p pkg, work string, stdout io.Writer) error {
	if len(p.TestGoFiles)+len(p.XTestGoFiles) == 0 {
		fmt.Fprintf(stdout, "%s: no test files\n", p.ImportPath)
		return nil
	}
	var all []mutant
	for _, f := range p.GoFiles {
		path := filepath.Join(p.Dir, f)
		src, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		ms, err := mutants(path, src)
		if err != nil {
			return err
		}
		all = append(all, ms...)
	}
	sample := pick(all, c.n, c.seed)
	if c.at != nil {
		sample = slices.DeleteFunc(sample, func(m mutant) bool { return !c.at[m.pos()] })
	}
	if c.list {
		for _, m := range sample {
			fmt.Fprintf(stdout, "%s: %s\n", m.pos(), m.desc)
		}
		return nil
	}

	dir, err := os.MkdirTemp(work, "pkg-")
	if err != nil {
		return err
	}
	bin := filepath.Join(dir, "pkg.test")
	if err := build(ctx, p, bin, ""); err != nil {
		return fmt.Errorf("building the unmutated tests: %w", err)
	}
	baseline, slow, err := baselineRun(ctx, c, p, bin)
	if err != nil {
		return err
	}
	timeout := max(time.Duration(float64(baseline)*c.factor), c.minTimeout)
	fmt.Fprintf(stdout, "%s: %d mutants, %d sampled (seed %d); tests take %s, timeout %s\n",
		p.ImportPath, len(all), len(sample), c.seed, baseline.Round(time.Millisecond), timeout.Round(time.Millisecond))
	if len(slow) > 0 {
		fmt.Fprintf(stdout, "  run last: %s\n", strings.Join(slow, " "))
	}

	counts := map[outcome]int{}
	var survivors []mutant
	for i, m := range sample {
		res, err := try(ctx, c, p, m, dir, slow, timeout)
		if err != nil {
			return err
		}
		counts[res]++
		if res == survived {
			survivors = append(survivors, m)
		}
		if c.verbose {
			// The first i+1 mutants are the sample of i+1: the running score is a score.
			fmt.Fprintf(stdout, "  [%d/%d] %s: %s: %s (score so far %d/%d)\n", i+1, len(sample), m.pos(), m.desc, res,
				counts[killed]+counts[timedOut], counts[killed]+counts[timedOut]+counts[survived])
		}
	}
	scored := counts[killed] + counts[timedOut] + counts[survived]
	score := 100.0
	if scored > 0 {
		score = 100 * float64(counts[killed]+counts[timedOut]) / float64(scored)
	}
	fmt.Fprintf(stdout, "%s: score %.1f %% (killed %d, timeout %d, survived %d, compile error %d)\n",
		p.ImportPath, score, counts[killed], counts[timedOut], counts[survived], counts[compileError])
	slices.SortStableFunc(survivors, func(a, b mutant) int {
		return cmp.Or(strings.Compare(a.file, b.file), cmp.Compare(a.line, b.line), cmp.Compare(a.col, b.col))
	})
	for _, m := range survivors {
		fmt.Fprintf(stdout, "  survived %s: %s\n", m.pos(), m.desc)
	}
	return nil
}

// slowTest is how long a top-level test of the unmutated run takes at least to be run after the others.
const slowTest = time.Second

// topLevelPass matches the line -test.v prints when a top-level test, fuzz target or example passes.
var topLevelPass = regexp.MustCompile(`(?m)^--- PASS: (\S+) \(([0-9.]+)s\)`)

// baselineRun runs the unmutated tests, which must pass, and returns how long they took and the names of
// the slow ones.
func baselineRun(ctx context.Context, c config, p pkg, bin string) (time.Duration, []string, error) {
	start := time.Now()
	cmd := testCmd(ctx, c, p, bin, "-test.v")
	out, err := cmd.CombinedOutput()
	if err != nil {
		return 0, nil, fmt.Errorf("the unmutated tests fail: %w\n%s", err, out)
	}
	return time.Since(start), slowTests(out), nil
}

// slowTests returns the names of the top-level tests that took slowTest or longer in -test.v output.
func slowTests(out []byte) []string {
	var slow []string
	for _, m := range topLevelPass.FindAllSubmatch(out, -1) {
		secs, err := strconv.ParseFloat(string(m[2]), 64)
		if err == nil && time.Duration(secs*float64(time.Second)) >= slowTest {
			slow = append(slow, string(m[1]))
		}
	}
	return slow
}

// exactly returns a -test.run pattern matching the top-level tests names and nothing else.
func exactly(names []string) string {
	quoted := make([]string, len(names))
	for i, n := range names {
		quoted[i] = regexp.QuoteMeta(n)
	}
	return "^(" + strings.Join(quoted, "|") + ")$"
}

// try builds and tests one mutant.
func try(ctx context.Context, c config, p pkg, m mutant, dir string, slow []string, timeout time.Duration) (outcome, error) {
	mutated := filepath.Join(dir, filepath.Base(m.file))
	if err := os.WriteFile(mutated, m.src, 0o644); err != nil {
		return 0, err
	}
	overlay := filepath.Join(dir, "overlay.json")
	o, err := json.Marshal(map[string]map[string]string{"Replace": {m.file: mutated}})
	if err != nil {
		return 0, err
	}
	if err := os.WriteFile(overlay, o, 0o644); err != nil {
		return 0, err
	}
	bin := filepath.Join(dir, "mutant.test")
	if err := build(ctx, p, bin, overlay); err != nil {
		if ctx.Err() != nil {
			return 0, ctx.Err()
		}
		return compileError, nil
	}
	tctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var res outcome
	if len(slow) == 0 {
		res = test(tctx, c, p, bin)
	} else {
		// A mutant is killed when any test fails, whatever the order: the quick tests first.
		res = test(tctx, c, p, bin, "-test.skip", skipping(c.skip, exactly(slow)))
		if res == survived {
			res = test(tctx, c, p, bin, "-test.run", exactly(slow))
		}
	}
	if ctx.Err() != nil {
		return 0, ctx.Err()
	}
	return res, nil
}

func build(ctx context.Context, p pkg, bin, overlay string) error {
	// Without the symbol table and DWARF the link, most of a mutant's build, takes about a third less.
	args := []string{"test", "-c", "-vet=off", "-ldflags=-s -w", "-o", bin}
	if overlay != "" {
		args = append(args, "-overlay", overlay)
	}
	cmd := exec.CommandContext(ctx, "go", append(args, p.ImportPath)...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("%w: %s", err, out)
	}
	return nil
}

// skipping joins -test.skip patterns: a test matching any is skipped.
func skipping(patterns ...string) string {
	return strings.Join(slices.DeleteFunc(patterns, func(p string) bool { return p == "" }), "|")
}

// testCmd runs the test binary with extra arguments, which may narrow -run further.
func testCmd(ctx context.Context, c config, p pkg, bin string, extra ...string) *exec.Cmd {
	args := []string{"-test.count=1", "-test.failfast"}
	if c.run != "" {
		args = append(args, "-test.run", c.run)
	}
	if c.skip != "" {
		args = append(args, "-test.skip", c.skip)
	}
	args = append(args, extra...)
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Dir = p.Dir // as go test runs it
	cmd.Env = os.Environ()
	if c.integration {
		cmd.Env = append(cmd.Env, "HPCSHIP_INTEGRATION=1")
	}
	// A mutant may make a test hang in a child process; kill the whole group at the timeout.
	setProcessGroup(cmd)
	cmd.WaitDelay = 5 * time.Second
	return cmd
}

func test(ctx context.Context, c config, p pkg, bin string, extra ...string) outcome {
	cmd := testCmd(ctx, c, p, bin, extra...)
	var out tail
	cmd.Stdout, cmd.Stderr = &out, io.Discard
	err := cmd.Run()
	switch {
	case ctx.Err() != nil:
		return timedOut
	// A test binary that exits 0 without its final PASS stopped before its tests, as a mutated TestMain
	// may: that is a failure too.
	case err != nil, !bytes.HasSuffix(bytes.TrimSpace(out), []byte("PASS")):
		return killed
	default:
		return survived
	}
}

// tail keeps the last bytes written to it, enough for a test binary's final line.
type tail []byte

func (t *tail) Write(p []byte) (int, error) {
	*t = append(*t, p...)
	if len(*t) > 64 {
		*t = append((*t)[:0], (*t)[len(*t)-64:]...)
	}
	return len(p), nil
}

// pick returns n mutants chosen by seed, in the order of the seed's permutation, so that the first k of a
// sample are the sample of k: a run stopped early has still scored a sample. With n 0, or covering them all,
// it returns all of them in source order.
func pick(all []mutant, n int, seed uint64) []mutant {
	if n == 0 || n >= len(all) {
		return all
	}
	r := rand.New(rand.NewPCG(seed, 0x6d7574617465))
	idx := r.Perm(len(all))[:n]
	out := make([]mutant, n)
	for i, j := range idx {
		out[i] = all[j]
	}
	return out
}

// pos is where m is, as file:line:col with the file relative to the working directory.
func (m mutant) pos() string {
	return fmt.Sprintf("%s:%d:%d", rel(m.file), m.line, m.col)
}

func rel(path string) string {
	wd, err := os.Getwd()
	if err != nil {
		return path
	}
	if r, err := filepath.Rel(wd, path); err == nil && !strings.HasPrefix(r, "..") {
		return r
	}
	return path
}
