"""What a later token can read of an earlier one, measured on the loaded model (page /readable).

- `probe`: the widths per token and layer; how much of a token's MLP hidden activation a linear
  map recovers from its K and V at the next layer (bracketed by a ceiling and a floor), fitted on
  the shipped corpus; the reader's own prompt scored by those probes.
- `ridge`: closed-form ridge regression from sufficient statistics, scored on held-out tokens.
- `patching`: counterfactual patching of one token's cached K/V between two prompts.
- `corpus`: the seeded script that sampled the corpus from the model, and its loader.
"""
