{# Shared tail of the synapse-creation templates: resize the registered variables to
   _newsize, set N, and number multiple synapses between the same pair. #}
    {% for varname in _registered_variables | variables_to_array_names(access_data=False) | sort %}
    {{ varname }}_ptr->resize(_newsize);
    {% endfor %}
    {{ N }} = _newsize;
    {% if multisynaptic_index %}
    _rt->number_synapses(_synaptic_pre_data, _synaptic_post_data, _newsize,
                         {{ get_array_name(variables[multisynaptic_index], access_data=False) }}_ptr->get_data_ptr());
    {% endif %}
