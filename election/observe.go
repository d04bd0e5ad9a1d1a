package election

import (
	"context"
	"fmt"
	"time"

	"github.com/concordkv/concord/lock"
	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/mvccpb"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// LeaderInfo is the state of an election at a revision.
type LeaderInfo struct {
	// Key is the leader's key, NAME/<lease-hex>; "" when there is no
	// leader (no candidate at all).
	Key   string
	Value string
	// Token is the leader's fencing token: its key's create revision.
	Token lock.Token
	// Lease is the leader's session lease.
	Lease clientv3.LeaseID
	// Revision is the store revision at which the election reached this
	// state.
	Revision int64
}

// HasLeader reports whether there is a leader.
func (li LeaderInfo) HasLeader() bool { return li.Key != "" }

// KeyValue reads the leader's key as it was when the election reached this
// state: the full key-value (mod revision and version too) with the read's
// header. If that history has been compacted meanwhile, the key-value is
// made from li alone (no mod revision or version), with the header of a
// current read. opts apply to the first read (clientv3.WithSerializable()
// on a member known to have applied li.Revision).
func (li LeaderInfo) KeyValue(ctx context.Context, cli *clientv3.Client, opts ...clientv3.OpOption) (*pb.ResponseHeader, *mvccpb.KeyValue, error) {
	resp, err := cli.Get(ctx, li.Key, append([]clientv3.OpOption{clientv3.WithRev(li.Revision)}, opts...)...)
	if err == nil && len(resp.Kvs) == 1 && resp.Kvs[0].CreateRevision == int64(li.Token) {
		return resp.Header, resp.Kvs[0], nil
	}
	if ctx.Err() != nil {
		return nil, nil, context.Cause(ctx)
	}
	now, err := cli.Get(ctx, li.Key, clientv3.WithCountOnly())
	if err != nil {
		return nil, nil, fmt.Errorf("read leader key %s: %w", li.Key, err)
	}
	return now.Header, &mvccpb.KeyValue{
		Key:            []byte(li.Key),
		Value:          []byte(li.Value),
		CreateRevision: int64(li.Token),
		Lease:          int64(li.Lease),
	}, nil
}

func (li LeaderInfo) sameLeaderAs(o LeaderInfo) bool {
	return li.Key == o.Key && li.Token == o.Token && li.Value == o.Value
}

func leaderInfo(kv *mvccpb.KeyValue, rev int64) LeaderInfo {
	if kv == nil {
		return LeaderInfo{Revision: rev}
	}
	return LeaderInfo{
		Key:      string(kv.Key),
		Value:    string(kv.Value),
		Token:    lock.Token(kv.CreateRevision),
		Lease:    clientv3.LeaseID(kv.Lease),
		Revision: rev,
	}
}

// Leader returns the current leader of the election name, read with cli;
// ErrNoLeader if there is none. It needs no session.
func Leader(ctx context.Context, cli *clientv3.Client, name string) (LeaderInfo, error) {
	resp, err := cli.Get(ctx, name+"/", clientv3.WithFirstCreate()...)
	if err != nil {
		return LeaderInfo{}, fmt.Errorf("%s: leader: %w", name, err)
	}
	if len(resp.Kvs) == 0 {
		return LeaderInfo{Revision: resp.Header.Revision}, fmt.Errorf("%s: %w", name, ErrNoLeader)
	}
	return leaderInfo(resp.Kvs[0], resp.Header.Revision), nil
}

// Observe reports the state of the election name, read with cli: first the
// current one, then every change, in revision order: a new leader, a new
// value proclaimed, or no leader left (LeaderInfo.HasLeader false). It
// needs no session. Observation follows every candidate's key, not only
// the leader's, so a leader that reigned for a single revision is reported
// too. The channel is unbuffered and each state waits for the reader (the
// watch buffers meanwhile); it is closed when ctx ends.
//
// If the observer falls so far behind that the history it needs was
// compacted, it reads the current state and goes on from there: the only
// case where an intermediate change can be skipped.
func Observe(ctx context.Context, cli *clientv3.Client, name string) <-chan LeaderInfo {
	ch := make(chan LeaderInfo)
	o := &observer{cli: cli, prefix: name + "/", out: ch}
	go o.run(ctx)
	return ch
}

// observer keeps the election's candidates, replays watch events onto them
// and derives the leader after every revision. Owned by one goroutine.
type observer struct {
	cli    *clientv3.Client
	prefix string
	out    chan<- LeaderInfo

	candidates map[string]*mvccpb.KeyValue
	last       LeaderInfo
	sent       bool
}

func (o *observer) run(ctx context.Context) {
	defer close(o.out)
	backoff := 50 * time.Millisecond
	for ctx.Err() == nil {
		rev, err := o.load(ctx)
		if err != nil {
			select {
			case <-ctx.Done():
				return
			case <-time.After(backoff):
			}
			backoff = min(2*backoff, time.Second)
			continue
		}
		backoff = 50 * time.Millisecond
		if !o.emit(ctx, rev) || !o.follow(ctx, rev) {
			return
		}
	}
}

// load reads every candidate and returns the revision read at.
func (o *observer) load(ctx context.Context) (int64, error) {
	resp, err := o.cli.Get(ctx, o.prefix, clientv3.WithPrefix())
	if err != nil {
		return 0, err
	}
	o.candidates = make(map[string]*mvccpb.KeyValue, len(resp.Kvs))
	for _, kv := range resp.Kvs {
		o.candidates[string(kv.Key)] = kv
	}
	return resp.Header.Revision, nil
}

// follow applies watch events from rev+1 on, emitting the state after each
// revision that has events. It returns false when ctx ends, true when the
// watch broke and the state must be read again.
func (o *observer) follow(ctx context.Context, rev int64) bool {
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	for wr := range o.cli.Watch(wctx, o.prefix, clientv3.WithPrefix(), clientv3.WithRev(rev+1)) {
		if wr.Err() != nil {
			return ctx.Err() == nil
		}
		for i, ev := range wr.Events {
			switch ev.Type {
			case mvccpb.PUT:
				o.candidates[string(ev.Kv.Key)] = ev.Kv
			case mvccpb.DELETE:
				delete(o.candidates, string(ev.Kv.Key))
			}
			// A transaction's events share a revision: emit after its last.
			if i == len(wr.Events)-1 || wr.Events[i+1].Kv.ModRevision != ev.Kv.ModRevision {
				if !o.emit(ctx, ev.Kv.ModRevision) {
					return false
				}
			}
		}
	}
	return ctx.Err() == nil
}

// emit sends the state at rev if it differs from the last one sent.
func (o *observer) emit(ctx context.Context, rev int64) bool {
	li := leaderInfo(o.leader(), rev)
	if o.sent && li.sameLeaderAs(o.last) {
		return true
	}
	select {
	case o.out <- li:
		o.last, o.sent = li, true
		return true
	case <-ctx.Done():
		return false
	}
}

// leader returns the candidate with the oldest create revision. Only keys
// made in one transaction share one (never two campaigns); the smaller key
// then leads, so that every observer agrees.
func (o *observer) leader() *mvccpb.KeyValue {
	var best *mvccpb.KeyValue
	for _, kv := range o.candidates {
		if best == nil || kv.CreateRevision < best.CreateRevision ||
			(kv.CreateRevision == best.CreateRevision && string(kv.Key) < string(best.Key)) {
			best = kv
		}
	}
	return best
}
