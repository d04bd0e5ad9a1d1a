package watch

import (
	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/mvccpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
)

// ProgressWatchID is the watch_id of the reply to a stream-wide progress
// request and of the reply to a failed create: etcd's InvalidWatchID.
const ProgressWatchID int64 = -1

// CompactedCancelReason is the cancel_reason etcd gives a create request
// with a negative start_revision.
var CompactedCancelReason = rpctypes.ErrCompacted.Error()

// Response is one message for the client of a Stream, in the order it must
// be sent. It maps one-to-one onto etcd's WatchResponse (see ToProto).
type Response struct {
	// WatchID is the watcher the response is for; ProgressWatchID for a
	// stream-wide progress reply or a failed create.
	WatchID int64
	// Revision is the response header's revision: the revision the
	// watcher is known complete up to when the response was made (for
	// live events, their revision; for catch-up, the last revision the
	// batch covered; for progress, the hub's notified revision; for
	// created and canceled, the current revision).
	Revision int64
	// Events are the watcher's events in revision order. Shared with other
	// watchers: never modify them.
	Events []*mvccpb.Event
	// CompactRevision is set, with Canceled, when the watcher's history was
	// compacted before it could be delivered.
	CompactRevision int64
	// Created answers a create request (Canceled too when it failed, with
	// WatchID ProgressWatchID and the reason in CancelReason).
	Created bool
	// Canceled: no more responses for WatchID will follow.
	Canceled     bool
	CancelReason string
	// Fragment: more events of the same response follow in the next
	// Response (only for watchers created with fragment).
	Fragment bool
}

// IsProgressNotify reports whether r is a progress notification (no events,
// not a control response), as clientv3 defines it.
func (r Response) IsProgressNotify() bool {
	return len(r.Events) == 0 && !r.Canceled && !r.Created && r.CompactRevision == 0
}

// ToProto builds the wire message. header supplies the cluster id, member id
// and raft term; its Revision is replaced by r.Revision (header is not
// modified).
func (r Response) ToProto(header *pb.ResponseHeader) *pb.WatchResponse {
	h := &pb.ResponseHeader{Revision: r.Revision}
	if header != nil {
		h.ClusterId, h.MemberId, h.RaftTerm = header.ClusterId, header.MemberId, header.RaftTerm
	}
	return &pb.WatchResponse{
		Header:          h,
		WatchId:         r.WatchID,
		Created:         r.Created,
		Canceled:        r.Canceled,
		CompactRevision: r.CompactRevision,
		CancelReason:    r.CancelReason,
		Fragment:        r.Fragment,
		Events:          r.Events,
	}
}
