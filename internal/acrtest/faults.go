package acrtest

import (
	"math/rand/v2"
	"net"
	"net/http"
	"strconv"
	"sync"
	"time"
)

// faultInjector decides, request by request, whether and how to fail. Decisions come from
// one seeded generator in request order.
type faultInjector struct {
	rate float64
	mu   sync.Mutex
	rng  *rand.Rand
}

// faultKinds lists the faults the injector chooses among, with equal chances.
func faultKinds() [4]Fault {
	return [...]Fault{FaultInternalError, FaultUnavailable, FaultTooManyRequests, FaultReset}
}

func newFaultInjector(rate float64, seed int64) *faultInjector {
	return &faultInjector{rate: rate, rng: rand.New(rand.NewPCG(uint64(seed), 0x61637274657374))}
}

// next returns the fault for the next request, or "" for none.
func (f *faultInjector) next() Fault {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.rate == 0 {
		return ""
	}
	// Always draw both numbers so that the sequence does not depend on the rate's outcome.
	kinds := faultKinds()
	hit, kind := f.rng.Float64(), f.rng.IntN(len(kinds))
	if hit >= f.rate {
		return ""
	}
	return kinds[kind]
}

// SetFaultRate changes the share of /v2/ requests that fail from now on, keeping the
// generator's sequence; 0 stops the faults, for instance to verify what a faulted run
// stored. A rate outside [0, 1] fails the test that started the registry (with Errorf,
// so it is safe from any goroutine) and changes nothing.
func (r *Registry) SetFaultRate(rate float64) {
	if rate < 0 || rate > 1 {
		r.errorf("acrtest: fault rate must be within [0, 1], got %v", rate)
		return
	}
	r.faults.mu.Lock()
	defer r.faults.mu.Unlock()
	r.faults.rate = rate
}

// tokenEndpoint wraps a token endpoint with fault injection when
// WithTokenEndpointFaults asks for it.
func (r *Registry) tokenEndpoint(serve http.HandlerFunc) http.Handler {
	if !r.opts.tokenFaults {
		return serve
	}
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if fault := r.faults.next(); fault != "" {
			r.inject(w, req, fault)
			return
		}
		serve(w, req)
	})
}

// inject answers req with fault.
func (r *Registry) inject(w http.ResponseWriter, req *http.Request, fault Fault) {
	r.count(func(s *Stats) { s.Faults[fault]++ })
	r.log.Info("acrtest injected a fault", "fault", string(fault), "method", req.Method, "path", req.URL.Path)
	switch fault {
	case FaultInternalError:
		writeErrors(w, http.StatusInternalServerError, "UNKNOWN", "unknown error")
	case FaultUnavailable:
		writeErrors(w, http.StatusServiceUnavailable, "UNAVAILABLE", "service unavailable")
	case FaultTooManyRequests:
		secs := (r.opts.retryAfter + time.Second - 1) / time.Second
		w.Header().Set("Retry-After", strconv.FormatInt(int64(secs), 10))
		writeErrors(w, http.StatusTooManyRequests, "TOOMANYREQUESTS", msgTooManyRequests)
	case FaultReset:
		reset(w)
	}
}

// reset closes the client's connection with a TCP RST, without a response.
func reset(w http.ResponseWriter) {
	conn, _, err := http.NewResponseController(w).Hijack()
	if err != nil {
		// Not hijackable (HTTP/2): the closest is an aborted response.
		panic(http.ErrAbortHandler)
	}
	if tcp, ok := conn.(*net.TCPConn); ok {
		tcp.SetLinger(0) // Without it the close is a FIN, still a failure.
	}
	conn.Close()
}
