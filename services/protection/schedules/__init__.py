"""Protection schedules: the `schedule.put/remove` commands, the scheduler loop that fires
each due time exactly once across replicas (and reports missed ones), and retention
enforcement after each scheduled run."""
