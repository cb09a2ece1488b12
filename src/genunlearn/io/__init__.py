"""What genunlearn reads and writes: weights and atomic saves (``weights``), the model folder format
(``model_folder``), the content-keyed cache (``cache``), the released models shipped with the package
(``released``) and the ``.npz`` samples format (``samples``)."""
