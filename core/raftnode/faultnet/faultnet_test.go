package faultnet

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"sync"
	"testing"
	"time"
)

// echoServer accepts on ln and echoes lines until ln closes.
func echoServer(t *testing.T, ln net.Listener) {
	t.Helper()
	var wg sync.WaitGroup
	t.Cleanup(func() {
		_ = ln.Close()
		wg.Wait()
	})
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Go(func() {
				defer c.Close()
				_, _ = io.Copy(c, c)
			})
		}
	})
}

func listen(t *testing.T, h *Host) string {
	t.Helper()
	ln, err := h.Listen("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	echoServer(t, ln)
	return ln.Addr().String()
}

// roundTrip writes a line on c and reads it back.
func roundTrip(c net.Conn) error {
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := c.Write([]byte("ping\n")); err != nil {
		return err
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		return err
	}
	if line != "ping\n" {
		return errors.New("bad echo " + line)
	}
	return nil
}

func dial(t *testing.T, h *Host, addr string) (net.Conn, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	c, err := h.Dial(ctx, addr)
	if err == nil {
		t.Cleanup(func() { _ = c.Close() })
	}
	return c, err
}

func TestCutRefusesAndClosesThenHeals(t *testing.T) {
	fab := New()
	a, b := fab.Host("a"), fab.Host("b")
	addrB := listen(t, b)

	c, err := dial(t, a, addrB)
	if err != nil {
		t.Fatal(err)
	}
	if err := roundTrip(c); err != nil {
		t.Fatalf("before cut: %v", err)
	}
	if got := fab.OpenConns("a", "b"); got != 1 {
		t.Fatalf("open conns a→b = %d, want 1", got)
	}

	fab.Cut("a", "b")
	if fab.Reachable("a", "b") {
		t.Fatal("a→b reachable after Cut")
	}
	if err := roundTrip(c); err == nil {
		t.Fatal("existing connection still works after Cut")
	}
	if _, err := dial(t, a, addrB); !errors.Is(err, ErrLinkCut) {
		t.Fatalf("dial after cut: %v, want ErrLinkCut", err)
	}
	var opErr *net.OpError
	if _, err := dial(t, a, addrB); !errors.As(err, &opErr) {
		t.Fatalf("dial after cut: %T, want *net.OpError", err)
	}

	fab.Heal("a", "b")
	c2, err := dial(t, a, addrB)
	if err != nil {
		t.Fatalf("dial after heal: %v", err)
	}
	if err := roundTrip(c2); err != nil {
		t.Fatalf("after heal: %v", err)
	}
}

func TestOneWayCutLeavesReverseDirection(t *testing.T) {
	fab := New()
	a, b := fab.Host("a"), fab.Host("b")
	addrA := listen(t, a)
	addrB := listen(t, b)

	ba, err := dial(t, b, addrA)
	if err != nil {
		t.Fatal(err)
	}
	fab.Cut("a", "b")
	if _, err := dial(t, a, addrB); !errors.Is(err, ErrLinkCut) {
		t.Fatalf("a→b dial: %v, want ErrLinkCut", err)
	}
	// b's own connection to a, and new ones, still work both ways.
	if err := roundTrip(ba); err != nil {
		t.Fatalf("b→a existing connection: %v", err)
	}
	if c, err := dial(t, b, addrA); err != nil {
		t.Fatalf("b→a dial: %v", err)
	} else if err := roundTrip(c); err != nil {
		t.Fatalf("b→a new connection: %v", err)
	}
}

func TestIsolateAndPartition(t *testing.T) {
	fab := New()
	hosts := map[string]*Host{}
	addrs := map[string]string{}
	for _, n := range []string{"a", "b", "c"} {
		hosts[n] = fab.Host(n)
		addrs[n] = listen(t, hosts[n])
	}
	check := func(from, to string, want bool) {
		t.Helper()
		_, err := dial(t, hosts[from], addrs[to])
		if got := err == nil; got != want {
			t.Fatalf("%s→%s reachable=%v (err %v), want %v", from, to, got, err, want)
		}
	}

	fab.Isolate("a")
	check("a", "b", false)
	check("b", "a", false)
	check("c", "a", false)
	check("b", "c", true)
	fab.HealAll()
	check("a", "b", true)

	fab.Partition([]string{"a", "b"}, []string{"c"})
	check("a", "b", true)
	check("b", "a", true)
	check("a", "c", false)
	check("c", "b", false)
	fab.HealBoth("b", "c")
	check("b", "c", true)
	check("c", "b", true)
	check("a", "c", false)
}

func TestUnknownAddressAndClosedListener(t *testing.T) {
	fab := New()
	a := fab.Host("a")
	if fab.Host("a") != a {
		t.Fatal("Host is not idempotent")
	}
	// A plain listener no host owns is reachable whatever is cut.
	plain, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	echoServer(t, plain)
	fab.Isolate("a")
	c, err := dial(t, a, plain.Addr().String())
	if err != nil {
		t.Fatalf("dial unowned address: %v", err)
	}
	if err := roundTrip(c); err != nil {
		t.Fatal(err)
	}

	// A closed listener's address is forgotten.
	b := fab.Host("b")
	ln, err := b.Listen("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	_ = ln.Close()
	fab.mu.Lock()
	_, owned := fab.owners[addr]
	fab.mu.Unlock()
	if owned {
		t.Fatal("closed listener still owns its address")
	}
}
