"""What an audit reads: models (checkpoint folders, hub ids, GGUF files, named real models), calibration
data and devices. Every failure is an `InputError` with one line naming the problem and the fix."""
