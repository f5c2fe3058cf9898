"""Port of pytorch/examples' ``word_language_model``: model, data, main and generate."""
