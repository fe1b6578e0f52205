"""Files in and out, below everything else: still images, video I-frames, atomic
writes (a killed process leaves the old file or the new one, never half of one) and
the reader of PyTorch checkpoint files. Imports nothing else of iac_jax."""
