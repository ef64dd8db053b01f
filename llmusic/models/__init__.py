"""Student models: the paper's piano-roll CNN, the melody transformer, and their LightningModules."""
