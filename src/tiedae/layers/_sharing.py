"""Serialize a layer that another layer is bound to, so that loading keeps one instance."""

import keras


def serialize_shared_layer(layer):
    """`keras.saving.serialize_keras_object(layer)`, marked as shared when saving a model.

    Inside `model.save()` Keras's object-sharing scope gives a `shared_object_id`
    to an object only when it sees it a second time, and it writes that id
    into the config dicts it has recorded. A layer's `get_config()` is copied
    as soon as it returns, so if the bound layer is first met here (e.g. the
    tied decoder comes before its `Dense` in the model's layer list) the id
    would only reach the model's entry, not our copy: on load the two would
    become different layers and the weights would fail to load. Serializing
    twice marks this config as shared right away; outside a sharing scope it
    changes nothing.
    """
    config = keras.saving.serialize_keras_object(layer)
    keras.saving.serialize_keras_object(layer)
    return config
