// Package faultproxy is a TCP proxy on loopback that injects network faults
// between a client and a server, for reliability tests: it can stall every
// connection (bytes are held, nothing is closed, like a partition or a
// frozen peer), drop every connection at once (both sides closed, like a
// reset), and refuse new connections.
//
// A stall applies to the connections open when Stall is called: new
// connections (a pgx cancel request, a reconnect) still get through, as when
// one TCP path freezes. Stall together with Refuse is a full partition.
//
// It is a test helper (production code never imports it) and has no
// dependencies beyond the standard library. Shopify's toxiproxy does the
// same as a library but brings its own HTTP API, logger and CLI
// dependencies and an old Prometheus client; the faults evaldb's tests need
// are these three.
//
// The proxy listens on 127.0.0.1 only and dials only the target it was
// given.
package faultproxy

import (
	"fmt"
	"net"
	"sync"
)

// Proxy forwards TCP connections from Addr to a target. All its methods are
// safe for concurrent use.
type Proxy struct {
	ln     net.Listener
	target string

	mu      sync.Mutex
	resume  chan struct{} // closed by Resume; nil when nothing is stalled
	refuse  bool
	conns   map[*link]struct{}
	total   int
	closed  bool
	wg      sync.WaitGroup
	dialErr error
}

type link struct {
	client, server net.Conn
	once           sync.Once
	hold           chan struct{} // non-nil while stalled; guarded by Proxy.mu
}

func (l *link) close() {
	l.once.Do(func() {
		_ = l.client.Close()
		_ = l.server.Close()
	})
}

// Start listens on a free loopback port and forwards every accepted
// connection to target (host:port). Close stops it.
func Start(target string) (*Proxy, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("faultproxy: listen: %w", err)
	}
	p := &Proxy{ln: ln, target: target, conns: map[*link]struct{}{}}
	p.wg.Add(1)
	go p.accept()
	return p, nil
}

// Addr is the proxy's host:port.
func (p *Proxy) Addr() string { return p.ln.Addr().String() }

// Port is the proxy's port.
func (p *Proxy) Port() int { return p.ln.Addr().(*net.TCPAddr).Port }

func (p *Proxy) accept() {
	defer p.wg.Done()
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		p.mu.Lock()
		refuse := p.refuse || p.closed
		p.mu.Unlock()
		if refuse {
			_ = c.Close()
			continue
		}
		s, err := net.Dial("tcp", p.target)
		if err != nil {
			p.mu.Lock()
			p.dialErr = err
			p.mu.Unlock()
			_ = c.Close()
			continue
		}
		l := &link{client: c, server: s}
		p.mu.Lock()
		if p.closed {
			p.mu.Unlock()
			l.close()
			continue
		}
		p.conns[l] = struct{}{}
		p.total++
		p.mu.Unlock()
		p.wg.Add(2)
		go p.pipe(l, c, s)
		go p.pipe(l, s, c)
	}
}

// pipe copies src to dst, holding each chunk while the proxy is stalled.
// When either direction ends, both sides are closed.
func (p *Proxy) pipe(l *link, dst, src net.Conn) {
	defer p.wg.Done()
	defer func() {
		l.close()
		p.mu.Lock()
		delete(p.conns, l)
		p.mu.Unlock()
	}()
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			p.mu.Lock()
			wait := l.hold
			p.mu.Unlock()
			if wait != nil {
				<-wait // held while stalled, until Resume or Close
			}
			if !p.alive(l) {
				return
			}
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			return // EOF, reset or closed by Drop/Close: the link ends
		}
	}
}

func (p *Proxy) alive(l *link) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	_, ok := p.conns[l]
	return ok && !p.closed
}

// Stall holds every byte in both directions on the connections open now,
// until Resume. They stay open: the peers see silence. Connections made
// after Stall flow normally (use Refuse as well for a full partition).
// It returns how many connections it stalled.
func (p *Proxy) Stall() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.resume == nil {
		p.resume = make(chan struct{})
	}
	for l := range p.conns {
		l.hold = p.resume
	}
	return len(p.conns)
}

// Resume ends every Stall: held bytes are delivered (on connections that
// are still open).
func (p *Proxy) Resume() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.resumeLocked()
}

func (p *Proxy) resumeLocked() {
	if p.resume != nil {
		close(p.resume)
		p.resume = nil
		for l := range p.conns {
			l.hold = nil
		}
	}
}

// Refuse makes the proxy close new connections at once (on) or accept them
// again (off).
func (p *Proxy) Refuse(on bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.refuse = on
}

// Drop closes every open connection, both sides, and discards held bytes.
// It returns how many it closed. New connections are accepted as usual.
func (p *Proxy) Drop() int {
	p.mu.Lock()
	links := make([]*link, 0, len(p.conns))
	for l := range p.conns {
		links = append(links, l)
		delete(p.conns, l)
	}
	p.mu.Unlock()
	for _, l := range links {
		l.close()
	}
	return len(links)
}

// Open is the number of connections the proxy holds open now.
func (p *Proxy) Open() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.conns)
}

// Total is the number of connections the proxy has accepted and forwarded.
func (p *Proxy) Total() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.total
}

// Close stops listening, closes every connection and waits for the
// proxy's goroutines. It returns the last error dialling the target, if
// any connection could not be forwarded.
func (p *Proxy) Close() error {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return nil
	}
	p.closed = true
	p.resumeLocked()
	p.mu.Unlock()
	_ = p.ln.Close()
	p.Drop()
	p.wg.Wait()
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.dialErr
}
