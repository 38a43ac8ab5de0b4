//! The probe: a workload that keeps measuring through switchover and failover.
