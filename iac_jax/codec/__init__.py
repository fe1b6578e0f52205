"""The image codec the paper builds on: the mean-scale hyperprior of Minnen et al.
(2018) as CompressAI's mbt2018-mean, with real range-coded bitstreams.

configs -> layers/, transforms -> hyperprior (with entropy_models/ and quantization)
-> entropy_parameters, range_coding, bitstream (the container) -> image_codec (images
in, bytes out and back); models is the registry of weights (weight_grid, how their
files store them on per-channel grids), losses the global model's rate-distortion
objective, compressai_import the CompressAI importer.
Depends only on `iac_jax.io`.
"""
