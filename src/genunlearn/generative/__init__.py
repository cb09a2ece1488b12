"""The generative family: the model (``model.GenerativeModel``), its training recipes (``recipes``)
and the tiny Stable-Diffusion-layout recipe for prompt tasks (``sd_recipe``)."""
