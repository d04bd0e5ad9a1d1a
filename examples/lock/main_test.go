package main

import (
	"bufio"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/concordkv/concord/internal/testcluster"
)

// TestRunTogether runs three copies at once against a cluster: the counter
// ends exact and the tokens, in the order printed, only increase.
func TestRunTogether(t *testing.T) {
	c := testcluster.Start(t, 1)
	const copies, rounds = 3, 4
	var mu sync.Mutex
	var out strings.Builder
	var wg sync.WaitGroup
	for range copies {
		wg.Go(func() {
			args := []string{"-endpoints", strings.Join(c.Endpoints(), ","), "-n", strconv.Itoa(rounds), "-hold", "10ms"}
			if err := run(t.Context(), args, &lockedWriter{&mu, &out}); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	var last int64
	var lines int
	sc := bufio.NewScanner(strings.NewReader(out.String()))
	for sc.Scan() {
		var token, value int64
		if _, err := fmt.Sscanf(sc.Text(), "token %d: /examples/lock-counter = %d", &token, &value); err != nil {
			t.Fatalf("line %q: %v", sc.Text(), err)
		}
		if token <= last {
			t.Errorf("token %d after %d", token, last)
		}
		last = token
		lines++
		if value != int64(lines) {
			t.Errorf("counter %d on line %d", value, lines)
		}
	}
	if lines != copies*rounds {
		t.Fatalf("%d lines, want %d:\n%s", lines, copies*rounds, out.String())
	}
}

// lockedWriter writes whole lines to a shared builder.
type lockedWriter struct {
	mu  *sync.Mutex
	out *strings.Builder
}

func (w *lockedWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.out.Write(p)
}
