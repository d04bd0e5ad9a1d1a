package main

import (
	"encoding/json"
	"fmt"
	"io"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// jsonPrinter writes each response as one line of JSON, encoded the way
// etcdctl encodes it: encoding/json over the API's structs (keys and values
// base64, IDs as numbers), with --hex turning member and cluster IDs into
// hex strings.
type jsonPrinter struct {
	out   io.Writer
	isHex bool
}

var _ printer = (*jsonPrinter)(nil)

func (p *jsonPrinter) write(v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("encode %T as JSON: %w", v, err)
	}
	fmt.Fprintln(p.out, string(b))
	return nil
}

func (p *jsonPrinter) Get(r *clientv3.GetResponse) error { return p.write((*pb.RangeResponse)(r)) }
func (p *jsonPrinter) Put(r *clientv3.PutResponse) error { return p.write((*pb.PutResponse)(r)) }
func (p *jsonPrinter) Del(r *clientv3.DeleteResponse) error {
	return p.write((*pb.DeleteRangeResponse)(r))
}
func (p *jsonPrinter) Txn(r *clientv3.TxnResponse) error {
	return p.write(txnJSON((*pb.TxnResponse)(r)))
}
func (p *jsonPrinter) Watch(r *clientv3.WatchResponse) error { return p.write(r) }

func (p *jsonPrinter) Grant(r *clientv3.LeaseGrantResponse) error { return p.write(r) }
func (p *jsonPrinter) Revoke(_ clientv3.LeaseID, r *clientv3.LeaseRevokeResponse) error {
	return p.write(r)
}
func (p *jsonPrinter) KeepAlive(r *clientv3.LeaseKeepAliveResponse) error { return p.write(r) }
func (p *jsonPrinter) TimeToLive(r *clientv3.LeaseTimeToLiveResponse, _ bool) error {
	return p.write(r)
}
func (p *jsonPrinter) Leases(r *clientv3.LeaseLeasesResponse) error { return p.write(r) }

func (p *jsonPrinter) MemberAdd(r *clientv3.MemberAddResponse) error {
	if p.isHex {
		return p.write(&struct {
			Header  *hexHeader   `json:"header"`
			Member  *hexMember   `json:"member"`
			Members []*hexMember `json:"members"`
		}{(*hexHeader)(r.Header), (*hexMember)(r.Member), hexMembers(r.Members)})
	}
	return p.write(r)
}

func (p *jsonPrinter) MemberRemove(_ uint64, r *clientv3.MemberRemoveResponse) error {
	return p.members(r, r.Header, r.Members)
}

func (p *jsonPrinter) MemberUpdate(_ uint64, r *clientv3.MemberUpdateResponse) error {
	return p.members(r, r.Header, r.Members)
}

func (p *jsonPrinter) MemberPromote(_ uint64, r *clientv3.MemberPromoteResponse) error {
	return p.members(r, r.Header, r.Members)
}

func (p *jsonPrinter) MemberList(r *clientv3.MemberListResponse) error {
	return p.members(r, r.Header, r.Members)
}

// members writes a membership response r, or with --hex its header and
// members with IDs in hex.
func (p *jsonPrinter) members(r any, h *pb.ResponseHeader, ms []*pb.Member) error {
	if !p.isHex {
		return p.write(r)
	}
	return p.write(&struct {
		Header  *hexHeader   `json:"header"`
		Members []*hexMember `json:"members"`
	}{(*hexHeader)(h), hexMembers(ms)})
}

func (p *jsonPrinter) EndpointHealth(hs []epHealth) error  { return p.write(hs) }
func (p *jsonPrinter) EndpointStatus(sts []epStatus) error { return p.write(sts) }
func (p *jsonPrinter) EndpointHashKV(hs []epHashKV) error  { return p.write(hs) }

// hexHeader is a response header whose IDs encode as hex strings.
type hexHeader pb.ResponseHeader

func (h *hexHeader) MarshalJSON() ([]byte, error) {
	return json.Marshal(&struct {
		ClusterID string `json:"cluster_id"`
		MemberID  string `json:"member_id"`
		Revision  int64  `json:"revision,omitempty"`
		RaftTerm  uint64 `json:"raft_term,omitempty"`
	}{
		ClusterID: fmt.Sprintf("%x", h.ClusterId),
		MemberID:  fmt.Sprintf("%x", h.MemberId),
		Revision:  h.Revision,
		RaftTerm:  h.RaftTerm,
	})
}

// hexMember is a member whose ID encodes as a hex string.
type hexMember pb.Member

func (m *hexMember) MarshalJSON() ([]byte, error) {
	return json.Marshal(&struct {
		ID         string   `json:"ID"`
		Name       string   `json:"name,omitempty"`
		PeerURLs   []string `json:"peerURLs,omitempty"`
		ClientURLs []string `json:"clientURLs,omitempty"`
		IsLearner  bool     `json:"isLearner,omitempty"`
	}{
		ID:         fmt.Sprintf("%x", m.ID),
		Name:       m.Name,
		PeerURLs:   m.PeerURLs,
		ClientURLs: m.ClientURLs,
		IsLearner:  m.IsLearner,
	})
}

func hexMembers(ms []*pb.Member) []*hexMember {
	out := make([]*hexMember, len(ms))
	for i, m := range ms {
		out[i] = (*hexMember)(m)
	}
	return out
}

// txnResponseJSON is etcdctl's JSON shape of a txn response: each op
// response wrapped as {"Response": {"response_put": ...}}.
type txnResponseJSON struct {
	Header    *pb.ResponseHeader `json:"header,omitempty"`
	Succeeded bool               `json:"succeeded,omitempty"`
	Responses []responseOpJSON   `json:"responses,omitempty"`
}

type responseOpJSON struct {
	Response responseOpUnionJSON `json:"Response"`
}

type responseOpUnionJSON struct {
	ResponseRange       *pb.RangeResponse       `json:"response_range,omitempty"`
	ResponsePut         *pb.PutResponse         `json:"response_put,omitempty"`
	ResponseDeleteRange *pb.DeleteRangeResponse `json:"response_delete_range,omitempty"`
	ResponseTxn         *txnResponseJSON        `json:"response_txn,omitempty"`
}

func txnJSON(r *pb.TxnResponse) txnResponseJSON {
	out := txnResponseJSON{Header: r.GetHeader(), Succeeded: r.GetSucceeded()}
	for _, op := range r.GetResponses() {
		var u responseOpUnionJSON
		switch v := op.GetResponse().(type) {
		case *pb.ResponseOp_ResponseRange:
			u.ResponseRange = v.ResponseRange
		case *pb.ResponseOp_ResponsePut:
			u.ResponsePut = v.ResponsePut
		case *pb.ResponseOp_ResponseDeleteRange:
			u.ResponseDeleteRange = v.ResponseDeleteRange
		case *pb.ResponseOp_ResponseTxn:
			nested := txnJSON(v.ResponseTxn)
			u.ResponseTxn = &nested
		}
		out.Responses = append(out.Responses, responseOpJSON{u})
	}
	return out
}
