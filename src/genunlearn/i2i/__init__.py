"""Image-to-image (inpainting / outpainting) models and their encoder unlearning (I2I, Li et al. 2024).

A model family beside the generative ones: an MAE-style encoder–decoder completes masked images.
``model.py`` (network, save/load, completion), ``masks.py`` (patch masks), ``recipe.py`` (training,
cached), ``unlearn.py`` (the shared unlearning loop, I2I and the baselines, the proxy retain set),
``methods.py`` (registration in the method registry). Kept import-light: nothing here imports torch.
"""
