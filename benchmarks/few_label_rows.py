"""Row names of the few-label tables.

Shared by the sections that write the rows (`quality`, `semi_supervised`) and the
report that compares them across sections; kept free of Keras so that rendering the
report imports no backend.
"""

# quality: supervised fine-tuning of the pretrained stack, and its random-init control.
FINE_TUNED = "SdA pretrained, fine-tuned"
RANDOM_INIT = "same network, random init"
# semi and semi_shifted: `fit_semi_supervised`, and its random-init control.
PRETRAINED = "SdA pretrained, semi-supervised fine-tuning"
CONTROL = "same network and training, random init"
# semi and semi_shifted: supervised fine-tuning with a named schedule
# (`settings["supervised_schedule"]`), and its random-init control.
SUPERVISED = "SdA pretrained, fine-tuned ({})"
SUPERVISED_CONTROL = "same network and schedule ({}), random init"
