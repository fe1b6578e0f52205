"""Measuring the codecs: metrics (PSNR, MS-SSIM, BD-rate), classical codecs, the
rates of one image three ways, RD reports, sweeps and figures, the decoder fuzzer and
the parity check against CompressAI. Reads what `codec` and `adaptation` produce."""
