package e2e

import (
	"cmp"
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/anishathalye/porcupine"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// TestLeaderKillLinearizable runs clientv3 writers and readers on every
// member (each client talks to one member, so followers serve linearizable
// reads and forward writes) while the leader is SIGKILLed and later
// restarted, then checks the history with porcupine against a register per
// key, and checks that response revisions never go back in real time.
func TestLeaderKillLinearizable(t *testing.T) {
	c := newCluster(t, 3)
	const (
		keys             = 4
		workersPerMember = 2
		steady           = time.Second // before the kill and after the restart
		leaderless       = 1500 * time.Millisecond
	)
	rec := &opRecorder{start: time.Now()}
	down := make([]atomic.Bool, len(c.members)) // a member's workers pause while it is down
	ctx, cancel := context.WithCancel(t.Context())
	var wg sync.WaitGroup
	for mi, m := range c.members {
		cli := c.client(m)
		for w := range workersPerMember {
			client := mi*workersPerMember + w
			wg.Go(func() { linWorker(ctx, cli, rec, &down[mi], client, keys) })
		}
	}
	stopWorkers := func() { cancel(); wg.Wait() }
	defer stopWorkers()

	sleepCtx(t, steady)
	old := c.leader(c.members, 10*time.Second)
	oldIndex := slices.Index(c.members, old)
	down[oldIndex].Store(true)
	killedAt := time.Now()
	c.kill(old)
	newLeader := c.leader(c.others(old), failoverBound)
	t.Logf("leader %s SIGKILLed under load; %s leads after %v", old.name, newLeader.name, time.Since(killedAt).Round(time.Millisecond))
	sleepCtx(t, leaderless)
	c.restart(old)
	down[oldIndex].Store(false)
	t.Logf("%s restarted and serving %v after the kill", old.name, time.Since(killedAt).Round(time.Millisecond))
	sleepCtx(t, steady)
	stopWorkers()

	ops := rec.history()
	var puts, gets, unknown int
	for _, op := range ops {
		in := op.Input.(linInput)
		switch out := op.Output.(linOutput); {
		case in.put && out.unknown:
			unknown++
		case in.put:
			puts++
		default:
			gets++
		}
	}
	t.Logf("history: %d acknowledged puts, %d puts with unknown outcome, %d linearizable gets", puts, unknown, gets)
	if puts < 100 || gets < 100 {
		t.Fatalf("history too small to mean anything: %d puts, %d gets", puts, gets)
	}

	checkRevisionsMonotonic(t, ops)

	checkStart := time.Now()
	model := registerModel()
	result, info := porcupine.CheckOperationsVerbose(model, ops, 60*time.Second)
	t.Logf("porcupine: %s in %v", result, time.Since(checkStart).Round(time.Millisecond))
	if result != porcupine.Ok {
		path := filepath.Join(os.TempDir(), fmt.Sprintf("concord-e2e-linearizability-%d.html", time.Now().UnixNano()))
		if err := porcupine.VisualizePath(model, info, path); err != nil {
			t.Logf("visualize: %v", err)
		} else {
			t.Logf("history visualized in %s", path)
		}
		t.Fatalf("history of %d operations is not linearizable: %s", len(ops), result)
	}
	c.hashKV(rec.maxRevision())
}

// linInput is an operation on one key: a put of a unique value or a get.
type linInput struct {
	put   bool
	key   string
	value string
}

// linOutput is what a get read (value, "" for a missing key) or, for a put
// that failed, that its outcome is unknown: it may or may not have taken
// effect, at any time after its call.
type linOutput struct {
	value    string
	unknown  bool
	revision int64 // the response header's revision; 0 if unknown
}

// registerModel is a register per key: a put sets it, a get must read the
// last value put.
func registerModel() porcupine.Model {
	return porcupine.Model{
		Partition: func(history []porcupine.Operation) [][]porcupine.Operation {
			byKey := map[string][]porcupine.Operation{}
			var order []string
			for _, op := range history {
				k := op.Input.(linInput).key
				if _, ok := byKey[k]; !ok {
					order = append(order, k)
				}
				byKey[k] = append(byKey[k], op)
			}
			out := make([][]porcupine.Operation, 0, len(order))
			for _, k := range order {
				out = append(out, byKey[k])
			}
			return out
		},
		Init: func() any { return "" },
		Step: func(state, input, output any) (bool, any) {
			in := input.(linInput)
			if in.put {
				return true, in.value
			}
			return output.(linOutput).value == state.(string), state
		},
		DescribeOperation: func(input, output any) string {
			in, out := input.(linInput), output.(linOutput)
			switch {
			case in.put && out.unknown:
				return fmt.Sprintf("put(%s, %s) -> ?", in.key, in.value)
			case in.put:
				return fmt.Sprintf("put(%s, %s) @%d", in.key, in.value, out.revision)
			default:
				return fmt.Sprintf("get(%s) -> %q @%d", in.key, out.value, out.revision)
			}
		},
	}
}

// opRecorder collects the operations of all workers. Times are nanoseconds
// since start on the monotonic clock.
type opRecorder struct {
	start time.Time
	mu    sync.Mutex
	ops   []porcupine.Operation
}

func (r *opRecorder) now() int64 { return time.Since(r.start).Nanoseconds() }

func (r *opRecorder) add(op porcupine.Operation) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.ops = append(r.ops, op)
}

// history returns the operations; a put with an unknown outcome gets a
// return time after every other operation, as it may take effect at any
// point after its call.
func (r *opRecorder) history() []porcupine.Operation {
	r.mu.Lock()
	defer r.mu.Unlock()
	end := r.now() + 1
	ops := slices.Clone(r.ops)
	for i := range ops {
		if ops[i].Output.(linOutput).unknown {
			ops[i].Return = end
		}
	}
	return ops
}

func (r *opRecorder) maxRevision() int64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	var rev int64
	for _, op := range r.ops {
		rev = max(rev, op.Output.(linOutput).revision)
	}
	return rev
}

// linWorker issues random puts (of unique values) and linearizable gets on
// a few keys through cli until ctx ends, pausing while down is set. Failed
// gets are dropped (a read has no effect); failed puts are kept with an
// unknown outcome.
func linWorker(ctx context.Context, cli *clientv3.Client, rec *opRecorder, down *atomic.Bool, client, keys int) {
	rng := rand.New(rand.NewPCG(uint64(client), uint64(time.Now().UnixNano())))
	for seq := 0; ctx.Err() == nil; seq++ {
		if down.Load() {
			time.Sleep(10 * time.Millisecond) // poll interval while the member is down
			continue
		}
		in := linInput{key: fmt.Sprintf("lin/k%d", rng.IntN(keys))}
		opCtx, cancel := context.WithTimeout(ctx, 5*time.Second)
		call := rec.now()
		var out linOutput
		var err error
		if in.put = rng.IntN(2) == 0; in.put {
			in.value = fmt.Sprintf("c%d-%d", client, seq)
			var resp *clientv3.PutResponse
			if resp, err = cli.Put(opCtx, in.key, in.value); err == nil {
				out.revision = resp.Header.Revision
			}
		} else {
			var resp *clientv3.GetResponse
			if resp, err = cli.Get(opCtx, in.key); err == nil {
				out.revision = resp.Header.Revision
				if len(resp.Kvs) == 1 {
					out.value = string(resp.Kvs[0].Value)
				}
			}
		}
		ret := rec.now()
		cancel()
		switch {
		case err == nil:
			rec.add(porcupine.Operation{ClientId: client, Input: in, Call: call, Output: out, Return: ret})
		case in.put:
			rec.add(porcupine.Operation{ClientId: client, Input: in, Call: call, Output: linOutput{unknown: true}})
			fallthrough
		default:
			if ctx.Err() == nil {
				time.Sleep(10 * time.Millisecond) // back off while the cluster elects a leader
			}
		}
	}
}

// checkRevisionsMonotonic checks real-time order on revisions: an
// operation that starts after another one returned sees a store revision at
// least as high.
func checkRevisionsMonotonic(t *testing.T, ops []porcupine.Operation) {
	t.Helper()
	var done []porcupine.Operation
	for _, op := range ops {
		if !op.Output.(linOutput).unknown {
			done = append(done, op)
		}
	}
	byCall := slices.Clone(done)
	slices.SortFunc(byCall, func(a, b porcupine.Operation) int { return cmp.Compare(a.Call, b.Call) })
	byReturn := slices.Clone(done)
	slices.SortFunc(byReturn, func(a, b porcupine.Operation) int { return cmp.Compare(a.Return, b.Return) })
	var maxRev int64
	var maxOp porcupine.Operation
	j, violations := 0, 0
	for _, op := range byCall {
		for j < len(byReturn) && byReturn[j].Return < op.Call {
			if r := byReturn[j].Output.(linOutput).revision; r > maxRev {
				maxRev, maxOp = r, byReturn[j]
			}
			j++
		}
		if r := op.Output.(linOutput).revision; r < maxRev {
			violations++
			if violations <= 5 {
				t.Errorf("client %d's %+v started after client %d's %+v returned revision %d, but saw revision %d",
					op.ClientId, op.Input, maxOp.ClientId, maxOp.Input, maxRev, r)
			}
		}
	}
	if violations > 0 {
		t.Errorf("%d operations saw a revision older than one already returned", violations)
	}
}

// sleepCtx lets the workers run for d, or until the test ends.
func sleepCtx(t *testing.T, d time.Duration) {
	select {
	case <-time.After(d):
	case <-t.Context().Done():
	}
}
