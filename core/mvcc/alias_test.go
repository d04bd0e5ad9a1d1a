package mvcc_test

import "go.etcd.io/etcd/api/v3/mvccpb"

type (
	mvccKV      = mvccpb.KeyValue
	mvccKVEvent = mvccpb.Event
)

func one(kv *mvccKV) []*mvccKV {
	if kv == nil {
		return nil
	}
	return []*mvccKV{kv}
}
