"""edgest's TVM target: Relax from torch.export, default CPU schedules or MetaSchedule tuning, run by the Relax VM."""
