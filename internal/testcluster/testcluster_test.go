package testcluster

import "testing"

func TestStartServes(t *testing.T) {
	c := Start(t, 1)
	cli := c.Client()
	if _, err := cli.Put(t.Context(), "k", "v"); err != nil {
		t.Fatal(err)
	}
	resp, err := cli.Get(t.Context(), "k")
	if err != nil || len(resp.Kvs) != 1 || string(resp.Kvs[0].Value) != "v" {
		t.Fatalf("get k = %v, %v", resp, err)
	}
}
