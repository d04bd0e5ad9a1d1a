package raftnode

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/hashicorp/raft"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/emptypb"
	"google.golang.org/protobuf/types/known/wrapperspb"
)

// The internal peer service, defined by hand (no protoc): messages are
// protobuf well-known wrappers; compound ones are hand-encoded inside a
// BytesValue. Methods:
//
//	Propose(BytesValue: list of payloads) → BytesValue: list of outcomes
//	ReadIndex(Empty) → UInt64Value: a confirmed read index (leader only)
//	Applied(Empty) → UInt64Value: this member's applied index (learner progress)
//	ChangeMember(BytesValue: memberChange) → Empty (leader only)
//	IsMember(UInt64Value: member ID) → BoolValue (leader only)
const peerServiceName = "concord.raftnode.v1.Peer"

// peerHandler is the service's handler type, as grpc.ServiceDesc requires.
type peerHandler interface {
	propose(ctx context.Context, req *wrapperspb.BytesValue) (*wrapperspb.BytesValue, error)
	readIndex(ctx context.Context, req *emptypb.Empty) (*wrapperspb.UInt64Value, error)
	appliedIndex(ctx context.Context, req *emptypb.Empty) (*wrapperspb.UInt64Value, error)
	changeMember(ctx context.Context, req *wrapperspb.BytesValue) (*emptypb.Empty, error)
	isMember(ctx context.Context, req *wrapperspb.UInt64Value) (*wrapperspb.BoolValue, error)
}

// peerServiceDesc describes the service for grpc.Server.RegisterService.
func peerServiceDesc() *grpc.ServiceDesc {
	return &grpc.ServiceDesc{
		ServiceName: peerServiceName,
		HandlerType: (*peerHandler)(nil),
		Methods: []grpc.MethodDesc{
			unaryMethod("Propose", peerHandler.propose),
			unaryMethod("ReadIndex", peerHandler.readIndex),
			unaryMethod("Applied", peerHandler.appliedIndex),
			unaryMethod("ChangeMember", peerHandler.changeMember),
			unaryMethod("IsMember", peerHandler.isMember),
		},
		Metadata: "core/raftnode/peerrpc.go",
	}
}

// unaryMethod builds a MethodDesc from a typed handler method.
func unaryMethod[Req any, PReq interface {
	*Req
	proto.Message
}, Resp proto.Message](name string, call func(peerHandler, context.Context, PReq) (Resp, error)) grpc.MethodDesc {
	fullMethod := "/" + peerServiceName + "/" + name
	return grpc.MethodDesc{
		MethodName: name,
		Handler: func(srv any, ctx context.Context, dec func(any) error, interceptor grpc.UnaryServerInterceptor) (any, error) {
			req := PReq(new(Req))
			if err := dec(req); err != nil {
				return nil, err
			}
			h := srv.(peerHandler)
			if interceptor == nil {
				return call(h, ctx, req)
			}
			info := &grpc.UnaryServerInfo{Server: srv, FullMethod: fullMethod}
			return interceptor(ctx, req, info, func(ctx context.Context, req any) (any, error) {
				return call(h, ctx, req.(PReq))
			})
		},
	}
}

// peerClient calls the peer service on one connection.
type peerClient struct{ cc grpc.ClientConnInterface }

func (c peerClient) invoke(ctx context.Context, method string, req, resp proto.Message) error {
	err := c.cc.Invoke(ctx, "/"+peerServiceName+"/"+method, req, resp)
	if err != nil {
		return fromStatus(err)
	}
	return nil
}

// propose forwards payloads and returns the result of each and the index
// of the entry that held them.
func (c peerClient) propose(ctx context.Context, payloads [][]byte) ([][]byte, uint64, error) {
	resp := new(wrapperspb.BytesValue)
	if err := c.invoke(ctx, "Propose", wrapperspb.Bytes(appendList(nil, payloads)), resp); err != nil {
		return nil, 0, err
	}
	out, index, err := decodeResults(resp.Value)
	if err != nil {
		return nil, 0, fmt.Errorf("decode forwarded proposal results: %w", err)
	}
	if len(out) != len(payloads) {
		return nil, 0, fmt.Errorf("leader answered %d results for %d forwarded proposals", len(out), len(payloads))
	}
	return out, index, nil
}

func (c peerClient) readIndex(ctx context.Context) (uint64, error) {
	resp := new(wrapperspb.UInt64Value)
	if err := c.invoke(ctx, "ReadIndex", new(emptypb.Empty), resp); err != nil {
		return 0, err
	}
	return resp.Value, nil
}

func (c peerClient) appliedIndex(ctx context.Context) (uint64, error) {
	resp := new(wrapperspb.UInt64Value)
	if err := c.invoke(ctx, "Applied", new(emptypb.Empty), resp); err != nil {
		return 0, err
	}
	return resp.Value, nil
}

func (c peerClient) changeMember(ctx context.Context, ch memberChange) error {
	return c.invoke(ctx, "ChangeMember", wrapperspb.Bytes(ch.encode()), new(emptypb.Empty))
}

// isMember asks the leader whether id is in its latest configuration.
func (c peerClient) isMember(ctx context.Context, id uint64) (bool, error) {
	resp := new(wrapperspb.BoolValue)
	if err := c.invoke(ctx, "IsMember", wrapperspb.UInt64(id), resp); err != nil {
		return false, err
	}
	return resp.Value, nil
}

// toStatus turns an error into a gRPC status carrying the sentinel's wire
// code as a detail, so that the caller gets the same sentinel back.
func toStatus(err error) error {
	if err == nil {
		return nil
	}
	if _, ok := status.FromError(err); ok && codeOf(err) == "" {
		return err
	}
	code := codes.Unknown
	switch {
	case errors.Is(err, context.Canceled):
		code = codes.Canceled
	case errors.Is(err, ErrTimeout), errors.Is(err, context.DeadlineExceeded):
		code = codes.DeadlineExceeded
	case errors.Is(err, ErrNoLeader), errors.Is(err, ErrNotLeader), errors.Is(err, ErrStopped), errors.Is(err, ErrLeaderChanged):
		code = codes.Unavailable
	case errors.Is(err, ErrMemberNotFound):
		code = codes.NotFound
	case errors.Is(err, ErrMemberExists):
		code = codes.AlreadyExists
	case errors.Is(err, ErrLearnerNotReady), errors.Is(err, ErrNotLearner), errors.Is(err, ErrBadTransferee):
		code = codes.FailedPrecondition
	case errors.Is(err, ErrTooLarge):
		code = codes.InvalidArgument
	}
	st := status.New(code, err.Error())
	if wire := codeOf(err); wire != "" {
		if withCode, derr := st.WithDetails(wrapperspb.String(wire)); derr == nil {
			st = withCode
		}
	}
	return st.Err()
}

// remoteError is an error a peer returned: it matches its sentinel with
// errors.Is and keeps the peer's message.
type remoteError struct {
	sentinel error
	msg      string
}

func (e *remoteError) Error() string { return "peer: " + e.msg }
func (e *remoteError) Unwrap() error { return e.sentinel }

// fromStatus maps a gRPC error back to the sentinel it carries. Transport
// failures stay gRPC status errors (codes.Unavailable and so on).
func fromStatus(err error) error {
	st, ok := status.FromError(err)
	if !ok {
		return err
	}
	for _, d := range st.Details() {
		if s, ok := d.(*wrapperspb.StringValue); ok {
			if sentinel := sentinelByCode(s.Value); sentinel != nil {
				return &remoteError{sentinel: sentinel, msg: st.Message()}
			}
		}
	}
	switch st.Code() {
	case codes.DeadlineExceeded:
		return fmt.Errorf("%w: %w", ErrTimeout, err)
	case codes.Canceled:
		return fmt.Errorf("%w: %w", context.Canceled, err)
	}
	return err
}

// Results of forwarded proposals: the state machine's result for each
// payload, packed with appendList, then the index of the entry that held
// them as a uvarint. A batch that could not be appended fails as a whole,
// with a gRPC status carrying the sentinel (toStatus).
func encodeResults(results [][]byte, index uint64) []byte {
	return binary.AppendUvarint(appendList(nil, results), index)
}

func decodeResults(data []byte) ([][]byte, uint64, error) {
	results, rest, err := readList(data)
	if err != nil {
		return nil, 0, err
	}
	index, n := binary.Uvarint(rest)
	if n <= 0 || n != len(rest) {
		return nil, 0, fmt.Errorf("malformed entry index after the results (%d bytes)", len(rest))
	}
	return results, index, nil
}

// memberChange is a membership change forwarded to the leader.
type memberChange struct {
	op      changeOp
	id      uint64
	addr    string
	learner bool
	// strict asks the leader for the contact check of
	// Config.StrictReconfigCheck (the receiving member's setting).
	strict bool
	// dryRun asks the leader to validate an add without making it. It
	// travels as its own operation, opCheckAdd, so that a leader that does
	// not know it refuses it rather than making the change.
	dryRun bool
}

type changeOp uint64

const (
	opAdd changeOp = iota + 1
	opPromote
	opRemove
	opTransfer
	opUpdate
	opCheckAdd // on the wire only: opAdd with dryRun
)

func (op changeOp) String() string {
	switch op {
	case opAdd:
		return "add"
	case opPromote:
		return "promote"
	case opRemove:
		return "remove"
	case opTransfer:
		return "transfer leadership"
	case opUpdate:
		return "update"
	}
	return fmt.Sprintf("op(%d)", uint64(op))
}

// encode writes the change as protobuf fields 1 op, 2 id, 3 addr, 4
// learner, 5 strict.
func (c memberChange) encode() []byte {
	var b []byte
	op := c.op
	if c.dryRun && op == opAdd {
		op = opCheckAdd
	}
	b = protowire.AppendTag(b, 1, protowire.VarintType)
	b = protowire.AppendVarint(b, uint64(op))
	b = protowire.AppendTag(b, 2, protowire.VarintType)
	b = protowire.AppendVarint(b, c.id)
	b = protowire.AppendTag(b, 3, protowire.BytesType)
	b = protowire.AppendString(b, c.addr)
	b = protowire.AppendTag(b, 4, protowire.VarintType)
	b = protowire.AppendVarint(b, protowire.EncodeBool(c.learner))
	b = protowire.AppendTag(b, 5, protowire.VarintType)
	b = protowire.AppendVarint(b, protowire.EncodeBool(c.strict))
	return b
}

func decodeMemberChange(b []byte) (memberChange, error) {
	var c memberChange
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return c, protowire.ParseError(n)
		}
		b = b[n:]
		switch {
		case num == 1 && typ == protowire.VarintType:
			v, n := protowire.ConsumeVarint(b)
			if n < 0 {
				return c, protowire.ParseError(n)
			}
			c.op, b = changeOp(v), b[n:]
		case num == 2 && typ == protowire.VarintType:
			v, n := protowire.ConsumeVarint(b)
			if n < 0 {
				return c, protowire.ParseError(n)
			}
			c.id, b = v, b[n:]
		case num == 3 && typ == protowire.BytesType:
			v, n := protowire.ConsumeString(b)
			if n < 0 {
				return c, protowire.ParseError(n)
			}
			c.addr, b = v, b[n:]
		case num == 4 && typ == protowire.VarintType:
			v, n := protowire.ConsumeVarint(b)
			if n < 0 {
				return c, protowire.ParseError(n)
			}
			c.learner, b = protowire.DecodeBool(v), b[n:]
		case num == 5 && typ == protowire.VarintType:
			v, n := protowire.ConsumeVarint(b)
			if n < 0 {
				return c, protowire.ParseError(n)
			}
			c.strict, b = protowire.DecodeBool(v), b[n:]
		default:
			n := protowire.ConsumeFieldValue(num, typ, b)
			if n < 0 {
				return c, protowire.ParseError(n)
			}
			b = b[n:]
		}
	}
	if c.op == opCheckAdd {
		c.op, c.dryRun = opAdd, true
	}
	if c.op < opAdd || c.op > opUpdate {
		return c, fmt.Errorf("unknown membership operation %d", uint64(c.op))
	}
	return c, nil
}

// peerServer serves the peer service for a Node.
type peerServer struct{ n *Node }

var _ peerHandler = peerServer{}

func (s peerServer) propose(ctx context.Context, req *wrapperspb.BytesValue) (*wrapperspb.BytesValue, error) {
	payloads, rest, err := readList(req.Value)
	if err != nil || len(rest) != 0 {
		return nil, status.Errorf(codes.InvalidArgument, "malformed forwarded proposals: %v", err)
	}
	results, index, err := s.n.proposeForwarded(ctx, payloads)
	if err != nil {
		return nil, toStatus(err)
	}
	return wrapperspb.Bytes(encodeResults(results, index)), nil
}

func (s peerServer) readIndex(ctx context.Context, _ *emptypb.Empty) (*wrapperspb.UInt64Value, error) {
	idx, err := s.n.leaderReadIndex(ctx)
	if err != nil {
		return nil, toStatus(err)
	}
	return wrapperspb.UInt64(idx), nil
}

func (s peerServer) appliedIndex(context.Context, *emptypb.Empty) (*wrapperspb.UInt64Value, error) {
	return wrapperspb.UInt64(s.n.applied.Index()), nil
}

func (s peerServer) changeMember(ctx context.Context, req *wrapperspb.BytesValue) (*emptypb.Empty, error) {
	ch, err := decodeMemberChange(req.Value)
	if err != nil {
		return nil, status.Errorf(codes.InvalidArgument, "malformed membership change: %v", err)
	}
	if err := s.n.changeOnLeader(ctx, ch); err != nil {
		return nil, toStatus(err)
	}
	return new(emptypb.Empty), nil
}

func (s peerServer) isMember(_ context.Context, req *wrapperspb.UInt64Value) (*wrapperspb.BoolValue, error) {
	if s.n.raft.State() != raft.Leader {
		return nil, toStatus(ErrNotLeader)
	}
	conf, _, err := s.n.configuration()
	if err != nil {
		return nil, toStatus(err)
	}
	return wrapperspb.Bool(inConfiguration(conf, serverID(req.Value))), nil
}
