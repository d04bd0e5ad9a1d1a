package main

import (
	"fmt"
	"io"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/mvccpb"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// fieldsPrinter writes etcdctl's `-w fields` format: one `"Name" : value`
// line per field, strings quoted, for scripts that grep a field.
type fieldsPrinter struct {
	unsupportedPrinter // member changes
	out                io.Writer
	isHex              bool
}

var _ printer = (*fieldsPrinter)(nil)

func (p *fieldsPrinter) kv(prefix string, kv *mvccpb.KeyValue) {
	fmt.Fprintf(p.out, "\"%sKey\" : %q\n", prefix, string(kv.GetKey()))
	fmt.Fprintf(p.out, "\"%sCreateRevision\" : %d\n", prefix, kv.GetCreateRevision())
	fmt.Fprintf(p.out, "\"%sModRevision\" : %d\n", prefix, kv.GetModRevision())
	fmt.Fprintf(p.out, "\"%sVersion\" : %d\n", prefix, kv.GetVersion())
	fmt.Fprintf(p.out, "\"%sValue\" : %q\n", prefix, string(kv.GetValue()))
	if p.isHex {
		fmt.Fprintf(p.out, "\"%sLease\" : %016x\n", prefix, kv.GetLease())
	} else {
		fmt.Fprintf(p.out, "\"%sLease\" : %d\n", prefix, kv.GetLease())
	}
}

func (p *fieldsPrinter) hdr(h *pb.ResponseHeader) {
	if p.isHex {
		fmt.Fprintf(p.out, "\"ClusterID\" : %x\n", h.GetClusterId())
		fmt.Fprintf(p.out, "\"MemberID\" : %x\n", h.GetMemberId())
	} else {
		fmt.Fprintln(p.out, `"ClusterID" :`, h.GetClusterId())
		fmt.Fprintln(p.out, `"MemberID" :`, h.GetMemberId())
	}
	// Only KV responses carry a revision; leave it out where it is unset.
	if h.GetRevision() > 0 {
		fmt.Fprintln(p.out, `"Revision" :`, h.GetRevision())
	}
	fmt.Fprintln(p.out, `"RaftTerm" :`, h.GetRaftTerm())
}

func (p *fieldsPrinter) id(name string, id int64) {
	if p.isHex {
		fmt.Fprintf(p.out, "\"%s\" : %016x\n", name, id)
	} else {
		fmt.Fprintf(p.out, "\"%s\" : %d\n", name, id)
	}
}

func (p *fieldsPrinter) Get(r *clientv3.GetResponse) error {
	resp := (*pb.RangeResponse)(r)
	p.hdr(resp.GetHeader())
	for _, kv := range resp.GetKvs() {
		p.kv("", kv)
	}
	fmt.Fprintln(p.out, `"More" :`, resp.GetMore())
	fmt.Fprintln(p.out, `"Count" :`, resp.GetCount())
	return nil
}

func (p *fieldsPrinter) Put(r *clientv3.PutResponse) error {
	resp := (*pb.PutResponse)(r)
	p.hdr(resp.GetHeader())
	if resp.GetPrevKv() != nil {
		p.kv("Prev", resp.GetPrevKv())
	}
	return nil
}

func (p *fieldsPrinter) Del(r *clientv3.DeleteResponse) error {
	resp := (*pb.DeleteRangeResponse)(r)
	p.hdr(resp.GetHeader())
	fmt.Fprintln(p.out, `"Deleted" :`, resp.GetDeleted())
	for _, kv := range resp.GetPrevKvs() {
		p.kv("Prev", kv)
	}
	return nil
}

func (p *fieldsPrinter) Txn(r *clientv3.TxnResponse) error {
	resp := (*pb.TxnResponse)(r)
	p.hdr(resp.GetHeader())
	fmt.Fprintln(p.out, `"Succeeded" :`, resp.GetSucceeded())
	for _, op := range resp.GetResponses() {
		switch v := op.GetResponse().(type) {
		case *pb.ResponseOp_ResponseDeleteRange:
			p.Del((*clientv3.DeleteResponse)(v.ResponseDeleteRange))
		case *pb.ResponseOp_ResponsePut:
			p.Put((*clientv3.PutResponse)(v.ResponsePut))
		case *pb.ResponseOp_ResponseRange:
			p.Get((*clientv3.GetResponse)(v.ResponseRange))
		default:
			fmt.Fprintf(p.out, "\"Unknown\" : %q\n", fmt.Sprintf("%+v", v))
		}
	}
	return nil
}

func (p *fieldsPrinter) Watch(r *clientv3.WatchResponse) error {
	p.hdr(r.Header)
	for _, ev := range r.Events {
		fmt.Fprintln(p.out, `"Type" :`, ev.Type)
		if ev.PrevKv != nil {
			p.kv("Prev", ev.PrevKv)
		}
		p.kv("", ev.Kv)
	}
	return nil
}

func (p *fieldsPrinter) Grant(r *clientv3.LeaseGrantResponse) error {
	p.hdr(r.ResponseHeader)
	p.id("ID", int64(r.ID))
	fmt.Fprintln(p.out, `"TTL" :`, r.TTL)
	return nil
}

func (p *fieldsPrinter) Revoke(_ clientv3.LeaseID, r *clientv3.LeaseRevokeResponse) error {
	p.hdr((*pb.LeaseRevokeResponse)(r).GetHeader())
	return nil
}

func (p *fieldsPrinter) KeepAlive(r *clientv3.LeaseKeepAliveResponse) error {
	p.hdr(r.ResponseHeader)
	p.id("ID", int64(r.ID))
	fmt.Fprintln(p.out, `"TTL" :`, r.TTL)
	return nil
}

func (p *fieldsPrinter) TimeToLive(r *clientv3.LeaseTimeToLiveResponse, _ bool) error {
	p.hdr(r.ResponseHeader)
	p.id("ID", int64(r.ID))
	fmt.Fprintln(p.out, `"TTL" :`, r.TTL)
	fmt.Fprintln(p.out, `"GrantedTTL" :`, r.GrantedTTL)
	for _, k := range r.Keys {
		fmt.Fprintf(p.out, "\"Key\" : %q\n", string(k))
	}
	return nil
}

func (p *fieldsPrinter) Leases(r *clientv3.LeaseLeasesResponse) error {
	p.hdr(r.ResponseHeader)
	for _, l := range r.Leases {
		p.id("ID", int64(l.ID))
	}
	return nil
}

func (p *fieldsPrinter) MemberList(r *clientv3.MemberListResponse) error {
	resp := (*pb.MemberListResponse)(r)
	p.hdr(resp.GetHeader())
	for _, m := range resp.GetMembers() {
		if p.isHex {
			fmt.Fprintf(p.out, "\"ID\" : %x\n", m.GetID())
		} else {
			fmt.Fprintln(p.out, `"ID" :`, m.GetID())
		}
		fmt.Fprintf(p.out, "\"Name\" : %q\n", m.GetName())
		for _, u := range m.GetPeerURLs() {
			fmt.Fprintf(p.out, "\"PeerURL\" : %q\n", u)
		}
		for _, u := range m.GetClientURLs() {
			fmt.Fprintf(p.out, "\"ClientURL\" : %q\n", u)
		}
		fmt.Fprintln(p.out, `"IsLearner" :`, m.GetIsLearner())
		fmt.Fprintln(p.out)
	}
	return nil
}

func (p *fieldsPrinter) EndpointHealth(hs []epHealth) error {
	for _, h := range hs {
		fmt.Fprintf(p.out, "\"Endpoint\" : %q\n", h.Ep)
		fmt.Fprintln(p.out, `"Health" :`, h.Health)
		fmt.Fprintln(p.out, `"Took" :`, h.Took)
		fmt.Fprintln(p.out, `"Error" :`, h.Error)
		fmt.Fprintln(p.out)
	}
	return nil
}

func (p *fieldsPrinter) EndpointStatus(sts []epStatus) error {
	for _, st := range sts {
		r := (*pb.StatusResponse)(st.Resp)
		p.hdr(r.GetHeader())
		fmt.Fprintf(p.out, "\"Version\" : %q\n", r.GetVersion())
		fmt.Fprintf(p.out, "\"StorageVersion\" : %q\n", r.GetStorageVersion())
		fmt.Fprintln(p.out, `"DBSize" :`, r.GetDbSize())
		fmt.Fprintln(p.out, `"DBSizeInUse" :`, r.GetDbSizeInUse())
		fmt.Fprintln(p.out, `"DBSizeQuota" :`, r.GetDbSizeQuota())
		fmt.Fprintln(p.out, `"Leader" :`, r.GetLeader())
		fmt.Fprintln(p.out, `"IsLearner" :`, r.GetIsLearner())
		fmt.Fprintln(p.out, `"RaftIndex" :`, r.GetRaftIndex())
		fmt.Fprintln(p.out, `"RaftAppliedIndex" :`, r.GetRaftAppliedIndex())
		fmt.Fprintln(p.out, `"Errors" :`, r.GetErrors())
		fmt.Fprintf(p.out, "\"Endpoint\" : %q\n", st.Ep)
		fmt.Fprintf(p.out, "\"DowngradeTargetVersion\" : %q\n", r.GetDowngradeInfo().GetTargetVersion())
		fmt.Fprintln(p.out, `"DowngradeEnabled" :`, r.GetDowngradeInfo().GetEnabled())
		fmt.Fprintln(p.out)
	}
	return nil
}

func (p *fieldsPrinter) EndpointHashKV(hs []epHashKV) error {
	for _, h := range hs {
		r := (*pb.HashKVResponse)(h.Resp)
		p.hdr(r.GetHeader())
		fmt.Fprintf(p.out, "\"Endpoint\" : %q\n", h.Ep)
		fmt.Fprintln(p.out, `"Hash" :`, r.GetHash())
		fmt.Fprintln(p.out, `"HashRevision" :`, r.GetHashRevision())
		fmt.Fprintln(p.out)
	}
	return nil
}
