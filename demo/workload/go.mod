module kpulse.local/workload

go 1.26.0
