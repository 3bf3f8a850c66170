package rootfs_test

// Bounds as a property: random hostile layers go through Flatten, WalkContents
// and squashfs packing in a child process, which an out-of-memory fatal error
// or a runaway allocation would kill or bloat without taking the test binary
// down. The parent asserts the child finished within a time budget, succeeded,
// and stayed under a memory budget (its peak resident set, VmHWM).

import (
	"archive/tar"
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"runtime/debug"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/hpcship/hpcship/internal/rootfs"
	"github.com/hpcship/hpcship/internal/squashfs"
)

const (
	// hostileChildEnv makes the test binary run the hostile inputs itself
	// rather than supervise a child doing it; its value is the seed.
	hostileChildEnv = "HPCSHIP_HOSTILE_CHILD_SEED"
	// hostileStacks is how many random layer stacks the child tries.
	hostileStacks = 300
	// hostileMemoryBudget is the most the child's resident set may reach.
	// Measured peaks are around a tenth of it (see the README); an
	// allocation from a declared size, or metadata kept without bound,
	// needs gigabytes.
	hostileMemoryBudget = 768 << 20
	// hostileKillAt stops a runaway child before it hurts the machine.
	hostileKillAt = 4 << 30
	// hostileTimeBudget is generous for a busy machine and the race
	// detector: the child takes seconds unloaded, a layer that made packing
	// read a declared terabyte would take hours.
	hostileTimeBudget = 8 * time.Minute
)

func TestHostileLayersStayWithinBudget(t *testing.T) {
	if seed := os.Getenv(hostileChildEnv); seed != "" {
		n, err := strconv.ParseUint(seed, 10, 64)
		require.NoError(t, err)
		runHostile(t, n)
		return
	}
	seeds := []uint64{1, 2, uint64(time.Now().UnixNano())}
	for _, seed := range seeds {
		t.Run(fmt.Sprint("seed ", seed), func(t *testing.T) {
			ctx, cancel := context.WithTimeout(t.Context(), hostileTimeBudget)
			defer cancel()
			cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^TestHostileLayersStayWithinBudget$", "-test.count=1", "-test.v")
			cmd.Env = append(os.Environ(), fmt.Sprintf("%s=%d", hostileChildEnv, seed))
			var out bytes.Buffer
			cmd.Stdout, cmd.Stderr = &out, &out
			start := time.Now()
			require.NoError(t, cmd.Start())
			stopWatch := watchRSS(cmd.Process.Pid, hostileKillAt, cmd.Process.Kill)
			err := cmd.Wait()
			stopWatch()
			elapsed := time.Since(start)
			require.NoError(t, ctx.Err(), "child ran past the time budget of %s:\n%s", hostileTimeBudget, tail(out.String()))
			require.NoError(t, err, "child failed (seed %d):\n%s", seed, tail(out.String()))
			peak := peakFromOutput(t, out.String())
			for line := range strings.Lines(out.String()) {
				if strings.Contains(line, "outcomes:") {
					t.Log(strings.TrimSpace(line))
				}
			}
			t.Logf("seed %d: %d stacks in %s, peak RSS %.1f MiB", seed, hostileStacks, elapsed.Round(time.Millisecond), float64(peak)/(1<<20))
			assert.Less(t, peak, int64(hostileMemoryBudget), "child's peak resident set")
		})
	}
}

// runHostile is the child: every stack must fail with a typed error or
// flatten and pack; it reports its peak resident set on stdout.
func runHostile(t *testing.T, seed uint64) {
	// A soft limit keeps garbage from inflating the peak the parent reads.
	debug.SetMemoryLimit(hostileMemoryBudget / 4)
	r := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	dir := t.TempDir()
	outcomes := map[string]int{}
	for i := range hostileStacks {
		ls := make([]rootfs.Layer, 1+r.IntN(3))
		for j := range ls {
			ls[j] = bytesLayer{data: hostileLayer(r)}
		}
		outcomes[flattenAndPack(t, filepath.Join(dir, fmt.Sprint(i)), ls)]++
	}
	for _, size := range []int64{1 << 30, 1 << 45, 1 << 62, 1<<63 - 1} {
		w, err := squashfs.NewWriter(&discardAt{})
		require.NoError(t, err)
		err = w.Add(t.Context(), squashfs.Entry{Path: "f", Size: size, Content: strings.NewReader("short")})
		require.ErrorIs(t, err, squashfs.ErrSizeMismatch)
		require.NoError(t, w.Close(t.Context()))
	}
	t.Logf("outcomes: %v", outcomes)
	fmt.Printf("hostile-peak-rss-kib %d\n", vmHWM(t, "self"))
}

// flattenAndPack flattens ls and packs the tree, returning the outcome.
func flattenAndPack(t *testing.T, img string, ls []rootfs.Layer) string {
	tree, err := rootfs.Flatten(t.Context(), ls)
	if err != nil {
		var le *rootfs.LayerError
		require.ErrorAs(t, err, &le, "Flatten failed without a *LayerError")
		for _, s := range []error{rootfs.ErrUnsafePath, rootfs.ErrInvalidLayer, rootfs.ErrTooLarge, rootfs.ErrTooManyEntries} {
			if errors.Is(err, s) {
				return s.Error()
			}
		}
		require.Failf(t, "untyped rejection", "%v", err)
	}
	if err := packTree(t.Context(), img, tree); err != nil {
		var ee *squashfs.EntryError
		require.ErrorAs(t, err, &ee, "packing failed without an *EntryError")
		return "squashfs: " + errors.Unwrap(ee.Err).Error()
	}
	return "packed"
}

// hostileLayer returns one random layer of up to a few dozen entries: tar
// headers with random types, names, sizes, owners and device numbers, PAX
// records and xattrs around and beyond the limits, sparse maps declaring
// holes up to 2^63-1 bytes, and now and then flipped bytes.
func hostileLayer(r *rand.Rand) []byte {
	var b bytes.Buffer
	// Most layers are ordinary with a few hostile entries, so that many
	// stacks get through to packing; the others are hostile throughout.
	hostility := []int{20, 3, 1}[r.IntN(3)]
	for range 1 + r.IntN(12) {
		if r.IntN(hostility) != 0 {
			b.Write(ordinaryEntry(r))
			continue
		}
		switch r.IntN(6) {
		case 0, 1, 2:
			b.Write(randomPAXEntry(r))
		case 3:
			b.Write(randomSparseEntry(r))
		case 4:
			b.Write(randomGNUEntry(r))
		default:
			blk := ustarBlock(randomName(r), randomTypeflag(r), r.IntN(2048))
			b.Write(blk[:len(blk)-1024])
		}
	}
	b.Write(make([]byte, 1024))
	data := b.Bytes()
	if r.IntN(8) == 0 {
		for range 1 + r.IntN(8) {
			data[r.IntN(len(data))] ^= byte(1 + r.IntN(255))
		}
	}
	return data
}

// ordinaryEntry writes a directory, a file of up to 64 KiB, or a sparse
// file unpacking to at most about 1000 times its data.
func ordinaryEntry(r *rand.Rand) []byte {
	name := fmt.Sprintf("d%d/f%d", r.IntN(4), r.IntN(1000))
	switch r.IntN(4) {
	case 0:
		blk := ustarBlock(fmt.Sprintf("d%d", r.IntN(4)), tar.TypeDir, 0)
		return blk[:len(blk)-1024]
	case 1:
		data := 1 + r.IntN(8192)
		size := int64(data) + r.Int64N(int64(data)*1000)
		return paxEntry(name, map[string]string{
			"GNU.sparse.major": "0", "GNU.sparse.minor": "1", "GNU.sparse.size": strconv.FormatInt(size, 10),
			"GNU.sparse.numblocks": "1", "GNU.sparse.map": fmt.Sprintf("%d,%d", size-int64(data), data),
		}, strings.Repeat("s", data))
	}
	body := make([]byte, r.IntN(64<<10))
	for i := range body {
		body[i] = byte(i * 7)
	}
	return paxEntry(name, map[string]string{"mtime": "1700000000"}, string(body))
}

var hostileNames = []string{"a", "a/b", "a/b/c", "/etc/passwd", "../x", "a/../b", ".wh.a", "a/.wh..wh..opq", ".wh..wh.plnk/x", ".", "l/x", "l", "d/l/x", ""}

// randomName returns an ordinary name most of the time, else one of the
// shapes Flatten must neutralise or refuse.
func randomName(r *rand.Rand) string {
	switch r.IntN(12) {
	case 0:
		return strings.Repeat(string(rune('a'+r.IntN(26)))+"/", 1+r.IntN(2100))
	case 1:
		return strings.Repeat("n", 1+r.IntN(300))
	case 2, 3, 4:
		return hostileNames[r.IntN(len(hostileNames))] + strconv.Itoa(r.IntN(3))
	}
	return fmt.Sprintf("d%d/f%d", r.IntN(4), r.IntN(1000))
}

func randomTypeflag(r *rand.Rand) byte {
	flags := []byte{tar.TypeReg, tar.TypeLink, tar.TypeSymlink, tar.TypeChar, tar.TypeBlock, tar.TypeDir, tar.TypeFifo,
		tar.TypeCont, tar.TypeGNUSparse, tar.TypeXHeader, tar.TypeXGlobalHeader, tar.TypeGNULongName, 'V', 0}
	return flags[r.IntN(len(flags))]
}

func randomSize(r *rand.Rand) int64 {
	sizes := []int64{0, 1, 511, 4096, 1 << 20, 1 << 30, 1 << 45, 1 << 62, 1<<63 - 1, -1}
	if r.IntN(4) == 0 {
		return sizes[r.IntN(len(sizes))]
	}
	return r.Int64N(4097)
}

// randomRecords returns PAX records: xattrs with names and values around
// Linux's limits, ACLs, reflected keys with odd values, many small records.
func randomRecords(r *rand.Rand) map[string]string {
	m := map[string]string{}
	if r.IntN(2) == 0 {
		return m
	}
	for range r.IntN(4) {
		switch r.IntN(7) {
		case 0:
			m["SCHILY.xattr.user."+strings.Repeat("x", r.IntN(300))] = strings.Repeat("v", r.IntN(70<<10))
		case 1:
			m["SCHILY.xattr.security.capability"] = string(rune(r.IntN(256)))
		case 2:
			m["SCHILY.acl.access"] = strings.Repeat("u::rwx,", r.IntN(20000))
		case 3:
			for k := range r.IntN(300) {
				m[fmt.Sprint("SCHILY.xattr.user.", k)] = ""
			}
		case 4:
			m["uname"] = strings.Repeat("u", r.IntN(400))
		case 5:
			m["SCHILY.xattr."+randomName(r)] = "v"
		default:
			m[fmt.Sprint("LIBARCHIVE.", r.IntN(1000))] = strings.Repeat("z", r.IntN(1000))
		}
	}
	return m
}

// randomPAXEntry writes an entry through archive/tar with random metadata. A
// regular file gets up to 4 KiB of content, or a declared size with none.
func randomPAXEntry(r *rand.Rand) []byte {
	var b bytes.Buffer
	tw := tar.NewWriter(&b)
	hdr := &tar.Header{
		Name: randomName(r), Typeflag: []byte{tar.TypeReg, tar.TypeDir, tar.TypeSymlink, tar.TypeLink, tar.TypeFifo}[r.IntN(5)],
		Mode: r.Int64N(1 << 16), Uid: r.IntN(1 << 20), Gid: r.IntN(1 << 20), ModTime: time.Unix(r.Int64N(1<<33), 0),
		Linkname: hostileNames[r.IntN(len(hostileNames))], PAXRecords: randomRecords(r), Format: tar.FormatPAX,
	}
	body := 0
	if hdr.Typeflag == tar.TypeReg {
		hdr.Size = randomSize(r)
		if hdr.Size >= 0 && hdr.Size <= 4096 {
			body = int(hdr.Size)
		}
	}
	if tw.WriteHeader(hdr) != nil {
		return nil
	}
	// A declared size without its content: the next header is read as data.
	b.Write(bytes.Repeat([]byte{byte(r.IntN(2))}, body))
	b.Write(make([]byte, (512-body%512)%512))
	return b.Bytes()
}

// randomSparseEntry writes a PAX sparse file (format 0.0, 0.1 or 1.0
// records) with a random map and declared size, and data that may or may
// not match the map.
func randomSparseEntry(r *rand.Rand) []byte {
	var offsets []string
	var end int64
	data := 0
	for range r.IntN(20) {
		n := r.IntN(8192)
		end += r.Int64N(1 << (10 + 5*r.IntN(8)))
		offsets = append(offsets, strconv.FormatInt(end, 10), strconv.Itoa(n))
		end += int64(n)
		data += n
	}
	size := max(randomSize(r), end)
	if r.IntN(8) == 0 {
		size = r.Int64N(max(end, 1)) // a map beyond the size
	}
	records := map[string]string{
		"GNU.sparse.size":      strconv.FormatInt(size, 10),
		"GNU.sparse.numblocks": strconv.Itoa(len(offsets) / 2),
		"GNU.sparse.map":       strings.Join(offsets, ","),
	}
	if r.IntN(8) == 0 {
		data = r.IntN(16384) // data that does not match the map
	}
	body := string(bytes.Repeat([]byte{'d'}, data))
	switch r.IntN(3) {
	case 0:
		records["GNU.sparse.major"], records["GNU.sparse.minor"] = "0", "1"
	case 1:
		// Format 1.0 keeps the map in the data, one number a line, padded to
		// a block.
		records = map[string]string{"GNU.sparse.major": "1", "GNU.sparse.minor": "0", "GNU.sparse.realsize": records["GNU.sparse.size"]}
		m := strconv.Itoa(len(offsets)/2) + "\n"
		for _, o := range offsets {
			m += o + "\n"
		}
		body = m + strings.Repeat("\x00", (512-len(m)%512)%512) + body
	}
	return paxEntry(randomName(r), records, body)
}

// randomGNUEntry writes a device, owner or size in GNU format, whose base-256
// numbers reach 2^63-1.
func randomGNUEntry(r *rand.Rand) []byte {
	var b bytes.Buffer
	tw := tar.NewWriter(&b)
	big := []int64{0, 1, 4095, 4096, 1<<20 - 1, 1 << 20, 1<<32 + 1, 1<<63 - 1}
	hdr := &tar.Header{
		Name: randomName(r), Typeflag: []byte{tar.TypeChar, tar.TypeBlock, tar.TypeReg}[r.IntN(3)], Format: tar.FormatGNU,
		Devmajor: big[r.IntN(len(big))], Devminor: big[r.IntN(len(big))], Uid: int(big[r.IntN(len(big))]), Mode: 0o600,
	}
	if hdr.Typeflag == tar.TypeReg {
		hdr.Size = randomSize(r)
	}
	if tw.WriteHeader(hdr) != nil {
		return nil
	}
	return b.Bytes()
}

// discardAt is an io.WriterAt that keeps nothing.
type discardAt struct{}

func (discardAt) WriteAt(p []byte, _ int64) (int, error) { return len(p), nil }

// vmHWM returns the peak resident set of process pid ("self" for this one)
// in KiB, from /proc/<pid>/status.
func vmHWM(t testing.TB, pid string) int64 {
	n, err := procStatus(pid, "VmHWM:")
	require.NoError(t, err)
	return n
}

func procStatus(pid, field string) (int64, error) {
	f, err := os.Open(filepath.Join("/proc", pid, "status"))
	if err != nil {
		return 0, err
	}
	defer f.Close()
	s := bufio.NewScanner(f)
	for s.Scan() {
		if rest, ok := strings.CutPrefix(s.Text(), field); ok {
			return strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
		}
	}
	return 0, fmt.Errorf("no %s in /proc/%s/status", field, pid)
}

// watchRSS kills the process when its resident set passes limit bytes, until
// the returned stop is called.
func watchRSS(pid int, limit int64, kill func() error) (stop func()) {
	done := make(chan struct{})
	stopped := make(chan struct{})
	go func() {
		defer close(stopped)
		tick := time.NewTicker(20 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-done:
				return
			case <-tick.C:
			}
			if kib, err := procStatus(strconv.Itoa(pid), "VmRSS:"); err == nil && kib<<10 > limit {
				_ = kill()
				return
			}
		}
	}()
	return func() {
		close(done)
		<-stopped
	}
}

func peakFromOutput(t testing.TB, out string) int64 {
	for line := range strings.Lines(out) {
		if rest, ok := strings.CutPrefix(line, "hostile-peak-rss-kib "); ok {
			kib, err := strconv.ParseInt(strings.TrimSpace(rest), 10, 64)
			require.NoError(t, err)
			return kib << 10
		}
	}
	require.Failf(t, "child reported no peak", "%s", tail(out))
	return 0
}

// tail returns the end of a child's output, enough to see why it failed,
// after the runtime's fatal error line if there is one.
func tail(s string) string {
	const keep = 8 << 10
	var fatal string
	if i := strings.Index(s, "fatal error:"); i >= 0 {
		fatal, _, _ = strings.Cut(s[i:], "\n")
		fatal += "\n"
	}
	if len(s) > keep {
		s = "..." + s[len(s)-keep:]
	}
	return fatal + s
}
