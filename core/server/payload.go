package server

import (
	"encoding/json"
	"errors"
	"fmt"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"google.golang.org/protobuf/proto"

	"github.com/concordkv/concord/core/lease"
	"github.com/concordkv/concord/core/mvcc"
)

// A Raft payload is one byte saying what follows, then the body. Most
// payloads are etcd's own InternalRaftRequest; member-table changes, which
// etcd carries in Raft configuration entries instead, have their own kind.
const (
	payloadRequest byte = 1 // body: InternalRaftRequest (protobuf)
	payloadMembers byte = 2 // body: memberChange (JSON)
)

// An apply result is one byte of status, then the body: a marshaled
// response, or the text of the error every member computed.
const (
	resultOK  byte = 0
	resultErr byte = 1
)

func encodeRequest(r *pb.InternalRaftRequest) ([]byte, error) {
	body, err := proto.Marshal(r)
	if err != nil {
		return nil, fmt.Errorf("marshal raft request: %w", err)
	}
	return append([]byte{payloadRequest}, body...), nil
}

func encodeMemberChange(c *memberChange) ([]byte, error) {
	body, err := json.Marshal(c)
	if err != nil {
		return nil, fmt.Errorf("marshal member change: %w", err)
	}
	return append([]byte{payloadMembers}, body...), nil
}

// encodeResult turns an apply outcome into the bytes the proposer receives.
func encodeResult(resp proto.Message, err error) []byte {
	if err != nil {
		return append([]byte{resultErr}, err.Error()...)
	}
	if resp == nil {
		return []byte{resultOK}
	}
	body, merr := proto.Marshal(resp)
	if merr != nil {
		return append([]byte{resultErr}, merr.Error()...)
	}
	return append([]byte{resultOK}, body...)
}

// appliedErrors are the errors an apply can produce that callers branch
// on; decodeResult maps their text back to the sentinel.
var appliedErrors = []error{
	mvcc.ErrCompacted,
	mvcc.ErrFutureRev,
	mvcc.ErrKeyNotFound,
	mvcc.ErrLeaseNotFound,
	mvcc.ErrTooManyOps,
	mvcc.ErrDuplicateKey,
	mvcc.ErrEmptyKey,
	lease.ErrLeaseNotFound,
	lease.ErrLeaseExists,
	lease.ErrLeaseTTLTooLarge,
	ErrMemberNotFound,
	ErrMemberExists,
	ErrPeerURLExists,
	ErrMemberNotLearner,
	errUnknownRequest,
}

// decodeResult unmarshals a successful result into resp (which may be nil
// when the body is empty) or returns the applied error.
func decodeResult(res []byte, resp proto.Message) error {
	if len(res) == 0 {
		return errors.New("empty apply result")
	}
	body := res[1:]
	if res[0] == resultErr {
		text := string(body)
		for _, e := range appliedErrors {
			if e.Error() == text {
				return e
			}
		}
		return errors.New(text)
	}
	if resp == nil {
		return nil
	}
	if err := proto.Unmarshal(body, resp); err != nil {
		return fmt.Errorf("unmarshal apply result: %w", err)
	}
	return nil
}
