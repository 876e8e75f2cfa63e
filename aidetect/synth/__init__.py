"""`aidetect synth`: aligned fakes, each real photo reconstructed by a generator-like decoder.

base.py          what every family is: encoder, decoder, upsampling factor
autoencoders.py  the decoder families (a registry, like the backbones')
taesd.py         the pretrained tiny autoencoder of FLUX.2 (TAEF2)
fit.py           training one family until its reconstructions are sharp
build.py         writing the fakes beside their twins, with the statistics that check them
config.py        the settings (torch-free: the CLI reads its defaults there)
"""
