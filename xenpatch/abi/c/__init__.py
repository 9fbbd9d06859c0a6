"""The C front end: preprocess, parse (the only pycparser user), declare, lay out, evaluate.

What comes out of it is the ABI model (``xenpatch.abi.model``); pycparser nodes never leave it.
"""
