module github.com/concordkv/concord

go 1.26.8
