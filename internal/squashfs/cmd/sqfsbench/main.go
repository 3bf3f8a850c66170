// Command sqfsbench supports scripts/bench/squashfs.sh: it generates the
// benchmark tree and packs a directory with the squashfs writer, so the same
// input can be timed against mksquashfs.
//
//	sqfsbench gen DIR                 write the ≈1 GB benchmark tree to DIR
//	sqfsbench pack [-comp gzip|zstd] [-level N] DIR IMG
//	                                  pack DIR into the squashfs image IMG
//
// pack reads the host directory only because mksquashfs needs one; the
// writer itself is fed entries and knows nothing of directories.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"log"
	"math/rand/v2"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/hpcship/hpcship/internal/squashfs"
)

func main() {
	log.SetFlags(0)
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], benchTree()); err != nil {
		log.Fatalf("sqfsbench: %v", err)
	}
}

// treeSize sizes the generated tree: how many small text files, in how many
// directories, each shorter than smallMax bytes; how many compressible log files of
// logSize bytes, the size of the copy of the first one's start; how many random files
// of randomSize bytes, a multiple of 8.
type treeSize struct {
	small, dirs, smallMax   int
	logs, logSize, copySize int
	randoms, randomSize     int
}

// benchTree is the tree scripts/bench/squashfs.sh packs, ≈950 MB.
func benchTree() treeSize {
	return treeSize{
		small: 20000, dirs: 200, smallMax: 20 << 10,
		logs: 4, logSize: 100 << 20, copySize: 50 << 20,
		randoms: 3, randomSize: 100 << 20,
	}
}

func run(ctx context.Context, args []string, tree treeSize) error {
	if len(args) == 0 {
		return errors.New("usage: sqfsbench gen DIR | sqfsbench pack [-comp gzip|zstd] [-level N] DIR IMG")
	}
	switch args[0] {
	case "gen":
		if len(args) != 2 {
			return errors.New("usage: sqfsbench gen DIR")
		}
		return generate(args[1], tree)
	case "pack":
		fl := flag.NewFlagSet("pack", flag.ContinueOnError)
		comp := fl.String("comp", "gzip", "compressor: gzip or zstd")
		level := fl.Int("level", squashfs.DefaultCompressionLevel, "compression level")
		if err := fl.Parse(args[1:]); err != nil {
			return err
		}
		if fl.NArg() != 2 {
			return errors.New("usage: sqfsbench pack [-comp gzip|zstd] [-level N] DIR IMG")
		}
		c := squashfs.Gzip
		switch *comp {
		case "gzip":
		case "zstd":
			c = squashfs.Zstd
		default:
			return fmt.Errorf("unknown compressor %q", *comp)
		}
		return pack(ctx, fl.Arg(0), fl.Arg(1), squashfs.WithCompression(c, *level))
	}
	return fmt.Errorf("unknown command %q", args[0])
}

// generate writes the tree, by default (benchTree) 20,000 small text files in 200
// directories (≈200 MB), four 100 MB compressible log files, one 50 MB copy of
// part of one of them, and three 100 MB random files: ≈950 MB in all.
func generate(dir string, size treeSize) error {
	r := rand.New(rand.NewPCG(2026, 11))
	words := make([]string, 2000)
	for i := range words {
		b := make([]byte, 2+r.IntN(9))
		for j := range b {
			b[j] = byte('a' + r.IntN(26))
		}
		words[i] = string(b)
	}
	text := func(n int) []byte {
		var sb strings.Builder
		for sb.Len() < n {
			sb.WriteString(words[r.IntN(len(words))])
			if r.IntN(12) == 0 {
				sb.WriteByte('\n')
			} else {
				sb.WriteByte(' ')
			}
		}
		return []byte(sb.String()[:n])
	}
	write := func(name string, data []byte) error {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return err
		}
		return os.WriteFile(p, data, 0o644)
	}
	for i := range size.small {
		if err := write(fmt.Sprintf("small/d%03d/f%05d.txt", i%size.dirs, i), text(r.IntN(size.smallMax))); err != nil {
			return err
		}
	}
	var logs [][]byte
	for i := range size.logs {
		var sb strings.Builder
		for line := 0; sb.Len() < size.logSize; line++ {
			fmt.Fprintf(&sb, "2026-11-28T12:%02d:%02d.%06dZ node%03d rank=%d %s %s value=%d\n",
				line/60%60, line%60, r.IntN(1e6), r.IntN(128), r.IntN(64), words[r.IntN(200)], words[r.IntN(len(words))], r.IntN(1e5))
		}
		logs = append(logs, []byte(sb.String()))
		if err := write(fmt.Sprintf("large/log%d.txt", i), logs[i]); err != nil {
			return err
		}
	}
	if err := write("large/log0-copy.txt", logs[0][:size.copySize]); err != nil {
		return err
	}
	for i := range size.randoms {
		b := make([]byte, size.randomSize)
		for j := 0; j < len(b); j += 8 {
			v := r.Uint64()
			for k := range 8 {
				b[j+k] = byte(v >> (8 * k))
			}
		}
		if err := write(fmt.Sprintf("large/random%d.bin", i), b); err != nil {
			return err
		}
	}
	return nil
}

// pack walks dir and adds what it finds: owners, modes, times, devices,
// hardlinks and xattrs of files and directories.
func pack(ctx context.Context, dir, img string, comp squashfs.Option) error {
	seen := map[[2]uint64]string{}
	return squashfs.WriteFile(ctx, img, func(w *squashfs.Writer) error {
		return filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			rel, err := filepath.Rel(dir, p)
			if err != nil {
				return err
			}
			fi, err := d.Info()
			if err != nil {
				return err
			}
			st := fi.Sys().(*syscall.Stat_t)
			e := squashfs.Entry{
				Path: filepath.ToSlash(rel), Mode: fi.Mode(), UID: st.Uid, GID: st.Gid, ModTime: fi.ModTime(),
				Devmajor: uint32((st.Rdev >> 8) & 0xfff), Devminor: uint32(st.Rdev&0xff | (st.Rdev>>12)&^0xff),
			}
			if key := [2]uint64{st.Dev, st.Ino}; !fi.IsDir() && st.Nlink > 1 {
				if first, ok := seen[key]; ok {
					return w.Add(ctx, squashfs.Entry{Path: e.Path, Type: squashfs.TypeHardlink, Linkname: first})
				}
				seen[key] = e.Path
			}
			switch m := fi.Mode(); {
			case m.IsDir():
				e.Type = squashfs.TypeDir
			case m&fs.ModeSymlink != 0:
				e.Type = squashfs.TypeSymlink
				if e.Linkname, err = os.Readlink(p); err != nil {
					return err
				}
			case m&fs.ModeCharDevice != 0:
				e.Type = squashfs.TypeCharDevice
			case m&fs.ModeDevice != 0:
				e.Type = squashfs.TypeBlockDevice
			case m&fs.ModeNamedPipe != 0:
				e.Type = squashfs.TypeFIFO
			case m&fs.ModeSocket != 0:
				e.Type = squashfs.TypeSocket
			default:
				f, err := os.Open(p)
				if err != nil {
					return err
				}
				defer f.Close()
				e.Size, e.Content = fi.Size(), f
			}
			if e.Type == squashfs.TypeRegular || e.Type == squashfs.TypeDir {
				if e.Xattrs, err = xattrs(p); err != nil {
					return err
				}
			}
			return w.Add(ctx, e)
		})
	}, comp)
}

func xattrs(p string) (map[string]string, error) {
	buf := make([]byte, 64<<10)
	n, err := syscall.Listxattr(p, buf)
	if err != nil || n == 0 {
		return nil, err
	}
	out := map[string]string{}
	for name := range strings.SplitSeq(strings.TrimRight(string(buf[:n]), "\x00"), "\x00") {
		v := make([]byte, 64<<10)
		vn, err := syscall.Getxattr(p, name, v)
		if err != nil {
			return nil, fmt.Errorf("reading xattr %s of %s: %w", name, p, err)
		}
		out[name] = string(v[:vn])
	}
	return out, nil
}
