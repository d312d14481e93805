"""Making presets: kits and soundchecks read as hits, grooves rendered (dry or in simulated rooms),
templates learned, triggers tuned, the learned trigger trained."""
