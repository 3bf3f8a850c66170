package squashfs

import (
	"context"
	"fmt"
	"io"
	"sync"
)

// The data pipeline. Add reads a block into a slot and queues a job; workers
// compress jobs in any order; one goroutine writes them in queue order, so the
// bytes on disk do not depend on the number of workers. The fixed number of
// slots bounds the memory held by blocks in flight.
//
//	Add ──job──▶ queue (FIFO) ───────────────▶ writer goroutine ──WriteAt──▶ image
//	    └─job──▶ work ──▶ worker 1..n ─done──┘      │
//	    ◀───────────── free slots ◀──────────────────┘

// slot holds one block of input and its compressed form.
type slot struct {
	raw []byte
	out []byte
}

type jobKind uint8

const (
	jobBlock  jobKind = iota // write a data block or a fragment block
	jobRewind                // drop the blocks written for file
)

type job struct {
	kind jobKind
	slot *slot
	data []byte // the input, inside slot.raw

	// Where the written block is recorded: block index of file, or frag.
	file  *fileData
	index uint64
	frag  *fragEntry

	// Set by the worker before done is closed.
	done   chan struct{}
	stored []byte
	size   uint32
	err    error
}

// fileData is where a regular file's contents are in the image. The writer
// goroutine fills start and blocks; they are read only after the pipeline has
// stopped.
type fileData struct {
	size    uint64
	start   uint64
	started bool
	blocks  []uint32
	frag    uint32
	fragOff uint32
	sparse  uint64
}

// setBlock records the size of block i. The list grows with the blocks
// written: all-zero blocks before i, which are never written, get size 0, and
// those after the last written one are left out (see block).
func (f *fileData) setBlock(i uint64, size uint32) {
	for uint64(len(f.blocks)) < i {
		f.blocks = append(f.blocks, 0)
	}
	f.blocks = append(f.blocks, size)
}

// block returns the size of the file's i-th full block as stored, 0 for an
// all-zero block.
func (f *fileData) block(i uint64) uint32 {
	if i < uint64(len(f.blocks)) {
		return f.blocks[i]
	}
	return 0
}

// fragEntry is one entry of the fragment table.
type fragEntry struct {
	start uint64
	size  uint32
}

type pipeline struct {
	w     io.WriterAt
	free  chan *slot
	work  chan *job
	queue chan *job
	wg    sync.WaitGroup

	// Owned by the writer goroutine until stop returns.
	pos  uint64
	high uint64

	mu  sync.Mutex
	err error
}

func newPipeline(w io.WriterAt, start uint64, workers, blockSize int, comp Compressor, level int) (*pipeline, error) {
	slots := 2*workers + 2
	p := &pipeline{
		w:     w,
		free:  make(chan *slot, slots),
		work:  make(chan *job, slots),
		queue: make(chan *job, slots+1),
		pos:   start,
		high:  start,
	}
	comps := make([]*compressor, workers)
	for i := range comps {
		c, err := newCompressor(comp, level, blockSize)
		if err != nil {
			return nil, err
		}
		comps[i] = c
	}
	for range slots {
		p.free <- &slot{raw: make([]byte, blockSize), out: make([]byte, 0, blockSize)}
	}
	p.wg.Add(workers + 1)
	for _, c := range comps {
		go p.compress(c)
	}
	go p.write()
	return p, nil
}

func (p *pipeline) compress(c *compressor) {
	defer p.wg.Done()
	for j := range p.work {
		z, err := c.compress(j.data)
		switch {
		case err != nil:
			j.err = err
		case z == nil:
			j.stored, j.size = j.data, uint32(len(j.data))|blockUncompressed
		default:
			j.slot.out = append(j.slot.out[:0], z...)
			j.stored, j.size = j.slot.out, uint32(len(z))
		}
		close(j.done)
	}
}

func (p *pipeline) write() {
	defer p.wg.Done()
	for j := range p.queue {
		if j.kind == jobRewind {
			if j.file.started {
				p.pos = j.file.start
			}
			continue
		}
		<-j.done
		if p.error() == nil {
			err := j.err
			if err == nil {
				_, err = p.w.WriteAt(j.stored, int64(p.pos))
				if err != nil {
					err = fmt.Errorf("writing data block at %d: %w", p.pos, err)
				}
			}
			if err != nil {
				p.setError(err)
			}
		}
		if j.file != nil {
			if !j.file.started {
				j.file.start, j.file.started = p.pos, true
			}
			j.file.setBlock(j.index, j.size)
		} else {
			j.frag.start, j.frag.size = p.pos, j.size
		}
		p.pos += uint64(len(j.stored))
		p.high = max(p.high, p.pos)
		p.free <- j.slot
	}
}

func (p *pipeline) error() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.err
}

func (p *pipeline) setError(err error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.err == nil {
		p.err = err
	}
}

// acquire returns a free slot, waiting while all are in flight.
func (p *pipeline) acquire(ctx context.Context) (*slot, error) {
	select {
	case s := <-p.free:
		return s, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

func (p *pipeline) release(s *slot) { p.free <- s }

// submit queues data (inside s.raw) for compression and writing.
func (p *pipeline) submit(j *job) {
	j.kind = jobBlock
	j.done = make(chan struct{})
	p.queue <- j
	p.work <- j
}

// rewind makes the space taken by the blocks of f, the latest file written,
// free for what comes next.
func (p *pipeline) rewind(f *fileData) {
	p.queue <- &job{kind: jobRewind, file: f}
}

// stop waits until every queued job is written and ends the goroutines.
func (p *pipeline) stop() {
	close(p.work)
	close(p.queue)
	p.wg.Wait()
}
