module github.com/dwell-nsm/dwell/bench/goflowpeer

go 1.26.0

require github.com/netsampler/goflow2/v2 v2.2.6
