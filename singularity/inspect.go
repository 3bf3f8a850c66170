package singularity

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/sylabs/sif/v2/pkg/sif"
)

// ErrNotSIF reports data that is not a SIF the inspector can read: no SIF
// magic, an unknown version, or a header or descriptor that points outside
// the file.
var ErrNotSIF = errors.New("not a SIF")

// Limits the inspector applies to what a file claims, so that a damaged or
// hostile file cannot make it allocate without bound.
const (
	maxDescriptors = 1 << 16
	maxObjectSize  = 16 << 20 // definition and JSON objects
	rawDescSize    = 585
	sifHeaderSize  = 128
)

// Descriptor describes one data object of a SIF.
type Descriptor struct {
	ID      uint32
	GroupID uint32
	// Type is the object's kind as siftool names it: "Def.FILE",
	// "JSON.Generic", "FS", …
	Type   string
	Name   string
	Offset int64
	Size   int64
	// FSType, PartType and Arch describe a partition ("Squashfs", "*System",
	// "amd64"); they are empty for other objects.
	FSType   string
	PartType string
	Arch     string
}

// Info is what Inspect reads from a SIF.
type Info struct {
	ID           string
	LaunchScript string
	Arch         string
	Created      time.Time
	Modified     time.Time
	Descriptors  []Descriptor
	// Definition is the definition file the SIF was built from.
	Definition string
	// Labels, Environment (script path to content), Runscript and
	// Startscript come from the inspect-metadata.json object that Apptainer
	// and Build write, where the scripts have no trailing newlines; they are
	// empty for a SIF without it.
	Labels      map[string]string
	Environment map[string]string
	Runscript   string
	Startscript string
	// OCIConfig is the image config from oci-config.json, nil if absent.
	OCIConfig *v1.Config
}

// readOnly is a sif.ReadWriter over an io.ReaderAt that refuses writes.
type readOnly struct {
	r    io.ReaderAt
	size int64
	pos  int64
}

func (r *readOnly) ReadAt(p []byte, off int64) (int, error) { return r.r.ReadAt(p, off) }
func (r *readOnly) Write([]byte) (int, error)               { return 0, errors.New("read-only") }
func (r *readOnly) Truncate(int64) error                    { return errors.New("read-only") }
func (r *readOnly) Seek(off int64, whence int) (int64, error) {
	switch whence {
	case io.SeekCurrent:
		off += r.pos
	case io.SeekEnd:
		off += r.size
	}
	if off < 0 {
		return 0, errors.New("negative position")
	}
	r.pos = off
	return off, nil
}

// checkHeader validates the parts of a SIF header the sif library trusts
// when loading: it allocates the descriptor table the header declares.
func checkHeader(r io.ReaderAt, size int64) error {
	var h [sifHeaderSize]byte
	if _, err := r.ReadAt(h[:], 0); err != nil {
		return fmt.Errorf("%w: reading header: %w", ErrNotSIF, err)
	}
	if string(h[32:42]) != "SIF_MAGIC\x00" {
		return fmt.Errorf("%w: no SIF magic", ErrNotSIF)
	}
	field := func(off int) int64 { return int64(binary.LittleEndian.Uint64(h[off:])) }
	total, descOff, descSize := field(88), field(96), field(104)
	switch {
	case total < 0 || total > maxDescriptors:
		return fmt.Errorf("%w: %d descriptors", ErrNotSIF, total)
	case descSize != total*rawDescSize:
		return fmt.Errorf("%w: descriptor table of %d bytes for %d descriptors", ErrNotSIF, descSize, total)
	case descOff < sifHeaderSize || descOff > size || descSize > size-descOff:
		return fmt.Errorf("%w: descriptor table at %d+%d outside the %d-byte file", ErrNotSIF, descOff, descSize, size)
	}
	return nil
}

// loadSIF loads a SIF from r after checking its header.
func loadSIF(r io.ReaderAt, size int64) (*sif.FileImage, error) {
	if err := checkHeader(r, size); err != nil {
		return nil, err
	}
	f, err := sif.LoadContainer(&readOnly{r: r, size: size}, sif.OptLoadWithFlag(os.O_RDONLY), sif.OptLoadWithCloseOnUnload(false))
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrNotSIF, err)
	}
	return f, nil
}

// Inspect reads the descriptors, definition, labels, environment scripts,
// runscript and image config of the SIF at path, without reading its
// partitions. A file that is not a SIF is an error wrapping ErrNotSIF.
func Inspect(path string) (*Info, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	info, err := InspectReader(f, fi.Size())
	if err != nil {
		return nil, fmt.Errorf("inspecting %s: %w", path, err)
	}
	return info, nil
}

// InspectReader is Inspect for a SIF of size bytes read from r.
func InspectReader(r io.ReaderAt, size int64) (*Info, error) {
	f, err := loadSIF(r, size)
	if err != nil {
		return nil, err
	}
	info := &Info{
		ID: f.ID(), LaunchScript: f.LaunchScript(), Arch: f.PrimaryArch(),
		Created: f.CreatedAt().UTC(), Modified: f.ModifiedAt().UTC(),
	}
	var derr error
	data := func(d sif.Descriptor) ([]byte, error) {
		if d.Size() > maxObjectSize {
			return nil, fmt.Errorf("object %d of %d bytes: metadata larger than %d bytes", d.ID(), d.Size(), maxObjectSize)
		}
		return d.GetData()
	}
	f.WithDescriptors(func(d sif.Descriptor) bool {
		if d.Size() < 0 || d.Offset() < 0 || d.Offset() > size || d.Size() > size-d.Offset() {
			derr = fmt.Errorf("%w: object %d of %d bytes at %d, in a %d-byte file", ErrNotSIF, d.ID(), d.Size(), d.Offset(), size)
			return true
		}
		desc := Descriptor{ID: d.ID(), GroupID: d.GroupID(), Type: d.DataType().String(), Name: d.Name(),
			Offset: d.Offset(), Size: d.Size()}
		switch d.DataType() {
		case sif.DataPartition:
			fs, pt, arch, err := d.PartitionMetadata()
			if err == nil {
				desc.FSType, desc.PartType, desc.Arch = fs.String(), pt.String(), arch
			}
		case sif.DataDeffile:
			b, err := data(d)
			if err != nil {
				derr = err
				return true
			}
			info.Definition = string(b)
		case sif.DataGenericJSON:
			switch d.Name() {
			case "inspect-metadata.json":
				b, err := data(d)
				if err == nil {
					var md inspectMetadata
					err = json.Unmarshal(b, &md)
					a := md.Data.Attributes
					info.Labels, info.Environment, info.Runscript, info.Startscript = a.Labels, a.Environment, a.Runscript, a.Startscript
				}
				if err != nil {
					derr = fmt.Errorf("reading inspect-metadata.json: %w", err)
					return true
				}
			case "oci-config.json":
				b, err := data(d)
				if err == nil {
					var cfg v1.Config
					if err = json.NewDecoder(bytes.NewReader(b)).Decode(&cfg); err == nil {
						info.OCIConfig = &cfg
					}
				}
				if err != nil {
					derr = fmt.Errorf("reading oci-config.json: %w", err)
					return true
				}
			}
		}
		info.Descriptors = append(info.Descriptors, desc)
		return false
	})
	if derr != nil {
		return nil, derr
	}
	return info, nil
}
