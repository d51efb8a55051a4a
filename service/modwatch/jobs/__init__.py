"""RQ jobs: queues, job functions, worker, scheduler and the /jobs API."""
