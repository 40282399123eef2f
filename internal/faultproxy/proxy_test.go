package faultproxy

import (
	"bufio"
	"errors"
	"io"
	"net"
	"os"
	"testing"
	"time"
)

// echoServer echoes every line back until the client closes.
func echoServer(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() { defer c.Close(); _, _ = io.Copy(c, c) }()
		}
	}()
	return ln.Addr().String()
}

func roundTrip(c net.Conn, r *bufio.Reader, msg string, wait time.Duration) (string, error) {
	if _, err := c.Write([]byte(msg + "\n")); err != nil {
		return "", err
	}
	_ = c.SetReadDeadline(time.Now().Add(wait))
	return r.ReadString('\n')
}

func TestProxy(t *testing.T) {
	t.Parallel()
	p, err := Start(echoServer(t))
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	c, err := net.Dial("tcp", p.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	r := bufio.NewReader(c)
	if got, err := roundTrip(c, r, "one", 10*time.Second); err != nil || got != "one\n" {
		t.Fatalf("forwarding: got %q, %v; want %q", got, err, "one\n")
	}

	if n := p.Stall(); n != 1 {
		t.Errorf("Stall() = %d, want 1 connection stalled", n)
	}
	if got, err := roundTrip(c, r, "two", 200*time.Millisecond); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("while stalled: got %q, %v; want a read deadline error", got, err)
	}
	fresh, err := net.Dial("tcp", p.Addr())
	if err != nil {
		t.Fatal(err)
	}
	if got, err := roundTrip(fresh, bufio.NewReader(fresh), "new", 10*time.Second); err != nil || got != "new\n" {
		t.Fatalf("a connection made after Stall: got %q, %v; want it to flow", got, err)
	}
	fresh.Close()
	p.Resume()
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
	if got, err := r.ReadString('\n'); err != nil || got != "two\n" {
		t.Fatalf("after Resume: got %q, %v; want the held bytes %q", got, err, "two\n")
	}

	waitOpen(t, p, 1)
	if n := p.Drop(); n != 1 {
		t.Errorf("Drop() = %d, want 1 connection closed", n)
	}
	if got, err := roundTrip(c, r, "three", 10*time.Second); err == nil {
		t.Fatalf("after Drop: got %q, want an error (connection closed)", got)
	}

	p.Refuse(true)
	c2, err := net.Dial("tcp", p.Addr())
	if err == nil {
		_, err = roundTrip(c2, bufio.NewReader(c2), "four", 10*time.Second)
		c2.Close()
	}
	if err == nil {
		t.Fatal("with Refuse(true): a new connection worked, want it closed")
	}
	p.Refuse(false)
	c3, err := net.Dial("tcp", p.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer c3.Close()
	if got, err := roundTrip(c3, bufio.NewReader(c3), "five", 10*time.Second); err != nil || got != "five\n" {
		t.Fatalf("after Refuse(false): got %q, %v", got, err)
	}
	if got := p.Total(); got != 3 {
		t.Errorf("Total() = %d, want 3 forwarded connections", got)
	}
	if err := p.Close(); err != nil {
		t.Errorf("Close() = %v", err)
	}
}

// waitOpen waits (bounded) until the proxy holds n connections: a closed
// peer's link goes away asynchronously.
func waitOpen(t *testing.T, p *Proxy, n int) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); p.Open() != n; {
		if time.Now().After(deadline) {
			t.Fatalf("Open() = %d, want %d", p.Open(), n)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
