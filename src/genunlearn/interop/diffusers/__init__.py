"""diffusers interop: opening DDPM and Stable-Diffusion-layout folders (``folders``), their networks
seen through genunlearn's interface (``unet``, ``text_unet``, ``view``), exporting a genunlearn model
as a pipeline (``export``) and an edited UNet as the weights it changed (``delta``)."""
