package main

import (
	"fmt"
	"io"
	"strings"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// simplePrinter writes etcdctl's default format: keys and values on lines
// of their own, one-line confirmations, comma-joined rows for tables.
type simplePrinter struct {
	out, errOut io.Writer
	isHex       bool
	valueOnly   bool // --print-value-only: no key lines
}

var _ printer = (*simplePrinter)(nil)

func (p *simplePrinter) Get(r *clientv3.GetResponse) error {
	for _, kv := range (*pb.RangeResponse)(r).GetKvs() {
		writeKV(p.out, p.isHex, p.valueOnly, kv)
	}
	return nil
}

func (p *simplePrinter) Put(r *clientv3.PutResponse) error {
	fmt.Fprintln(p.out, "OK")
	if prev := (*pb.PutResponse)(r).GetPrevKv(); prev != nil {
		writeKV(p.out, p.isHex, p.valueOnly, prev)
	}
	return nil
}

func (p *simplePrinter) Del(r *clientv3.DeleteResponse) error {
	resp := (*pb.DeleteRangeResponse)(r)
	fmt.Fprintln(p.out, resp.GetDeleted())
	for _, kv := range resp.GetPrevKvs() {
		writeKV(p.out, p.isHex, p.valueOnly, kv)
	}
	return nil
}

func (p *simplePrinter) Txn(r *clientv3.TxnResponse) error {
	resp := (*pb.TxnResponse)(r)
	if resp.GetSucceeded() {
		fmt.Fprintln(p.out, "SUCCESS")
	} else {
		fmt.Fprintln(p.out, "FAILURE")
	}
	for _, op := range resp.GetResponses() {
		fmt.Fprintln(p.out)
		switch v := op.GetResponse().(type) {
		case *pb.ResponseOp_ResponseDeleteRange:
			p.Del((*clientv3.DeleteResponse)(v.ResponseDeleteRange))
		case *pb.ResponseOp_ResponsePut:
			p.Put((*clientv3.PutResponse)(v.ResponsePut))
		case *pb.ResponseOp_ResponseRange:
			p.Get((*clientv3.GetResponse)(v.ResponseRange))
		default:
			fmt.Fprintf(p.out, "unexpected response %+v\n", op)
		}
	}
	return nil
}

func (p *simplePrinter) Watch(r *clientv3.WatchResponse) error {
	for _, ev := range r.Events {
		fmt.Fprintln(p.out, ev.Type)
		if ev.PrevKv != nil {
			writeKV(p.out, p.isHex, p.valueOnly, ev.PrevKv)
		}
		writeKV(p.out, p.isHex, p.valueOnly, ev.Kv)
	}
	return nil
}

func (p *simplePrinter) Grant(r *clientv3.LeaseGrantResponse) error {
	fmt.Fprintf(p.out, "lease %016x granted with TTL(%ds)\n", r.ID, r.TTL)
	return nil
}

func (p *simplePrinter) Revoke(id clientv3.LeaseID, _ *clientv3.LeaseRevokeResponse) error {
	fmt.Fprintf(p.out, "lease %016x revoked\n", id)
	return nil
}

func (p *simplePrinter) KeepAlive(r *clientv3.LeaseKeepAliveResponse) error {
	fmt.Fprintf(p.out, "lease %016x keepalived with TTL(%d)\n", r.ID, r.TTL)
	return nil
}

func (p *simplePrinter) TimeToLive(r *clientv3.LeaseTimeToLiveResponse, keys bool) error {
	if r.GrantedTTL == 0 && r.TTL == -1 {
		fmt.Fprintf(p.out, "lease %016x already expired\n", r.ID)
		return nil
	}
	line := fmt.Sprintf("lease %016x granted with TTL(%ds), remaining(%ds)", r.ID, r.GrantedTTL, r.TTL)
	if keys {
		ks := make([]string, len(r.Keys))
		for i, k := range r.Keys {
			ks[i] = string(k)
		}
		line += fmt.Sprintf(", attached keys(%v)", ks)
	}
	fmt.Fprintln(p.out, line)
	return nil
}

func (p *simplePrinter) Leases(r *clientv3.LeaseLeasesResponse) error {
	fmt.Fprintf(p.out, "found %d leases\n", len(r.Leases))
	for _, l := range r.Leases {
		fmt.Fprintf(p.out, "%016x\n", l.ID)
	}
	return nil
}

func (p *simplePrinter) MemberAdd(r *clientv3.MemberAddResponse) error {
	resp := (*pb.MemberAddResponse)(r)
	as := " "
	if resp.GetMember().GetIsLearner() {
		as = " as learner "
	}
	fmt.Fprintf(p.out, "Member %16x added%sto cluster %16x\n", resp.GetMember().GetID(), as, resp.GetHeader().GetClusterId())
	return nil
}

func (p *simplePrinter) MemberRemove(id uint64, r *clientv3.MemberRemoveResponse) error {
	fmt.Fprintf(p.out, "Member %16x removed from cluster %16x\n", id, (*pb.MemberRemoveResponse)(r).GetHeader().GetClusterId())
	return nil
}

func (p *simplePrinter) MemberUpdate(id uint64, r *clientv3.MemberUpdateResponse) error {
	fmt.Fprintf(p.out, "Member %16x updated in cluster %16x\n", id, (*pb.MemberUpdateResponse)(r).GetHeader().GetClusterId())
	return nil
}

func (p *simplePrinter) MemberPromote(id uint64, r *clientv3.MemberPromoteResponse) error {
	fmt.Fprintf(p.out, "Member %16x promoted in cluster %16x\n", id, (*pb.MemberPromoteResponse)(r).GetHeader().GetClusterId())
	return nil
}

func (p *simplePrinter) MemberList(r *clientv3.MemberListResponse) error {
	_, rows := memberListTable(r)
	p.rows(rows)
	return nil
}

func (p *simplePrinter) EndpointHealth(hs []epHealth) error {
	for _, h := range hs {
		if h.Error == "" {
			fmt.Fprintf(p.out, "%s is healthy: successfully committed proposal: took = %v\n", h.Ep, h.Took)
		} else {
			fmt.Fprintf(p.errOut, "%s is unhealthy: failed to commit proposal: %v\n", h.Ep, h.Error)
		}
	}
	return nil
}

func (p *simplePrinter) EndpointStatus(sts []epStatus) error {
	_, rows := endpointStatusTable(sts)
	p.rows(rows)
	return nil
}

func (p *simplePrinter) EndpointHashKV(hs []epHashKV) error {
	_, rows := endpointHashKVTable(hs)
	p.rows(rows)
	return nil
}

func (p *simplePrinter) rows(rows [][]string) {
	for _, row := range rows {
		fmt.Fprintln(p.out, strings.Join(row, ", "))
	}
}
