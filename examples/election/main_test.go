package main

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/concordkv/concord/internal/testcluster"
)

// syncWriter collects output lines for a test to wait on.
type syncWriter struct {
	mu    sync.Mutex
	lines []string
}

func (w *syncWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.lines = append(w.lines, strings.TrimSpace(string(p)))
	return len(p), nil
}

func (w *syncWriter) waitFor(t *testing.T, prefix string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		w.mu.Lock()
		for _, l := range w.lines {
			if strings.HasPrefix(l, prefix) {
				w.mu.Unlock()
				return
			}
		}
		w.mu.Unlock()
		time.Sleep(20 * time.Millisecond)
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	t.Fatalf("no line starting %q in %q", prefix, w.lines)
}

// TestHandOver: a second copy waits while the first leads, and is elected
// when the first is interrupted (and resigns); an observer sees both.
func TestHandOver(t *testing.T) {
	c := testcluster.Start(t, 1)
	eps := strings.Join(c.Endpoints(), ",")
	start := func(args ...string) (*syncWriter, context.CancelFunc, <-chan error) {
		ctx, cancel := context.WithCancel(t.Context())
		w := &syncWriter{}
		done := make(chan error, 1)
		go func() { done <- run(ctx, append([]string{"-endpoints", eps}, args...), w) }()
		return w, cancel, done
	}
	obs, stopObs, obsDone := start("-observe")
	first, stopFirst, firstDone := start("-value", "first")
	first.waitFor(t, "elected")
	second, stopSecond, secondDone := start("-value", "second")
	second.waitFor(t, "campaigning")
	stopFirst()
	if err := <-firstDone; err != nil {
		t.Fatal(err)
	}
	first.waitFor(t, "resigned")
	second.waitFor(t, "elected")
	obs.waitFor(t, `leader: "first"`)
	obs.waitFor(t, `leader: "second"`)
	stopSecond()
	stopObs()
	for _, done := range []<-chan error{secondDone, obsDone} {
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	}
}
