{# Shared tail of the synapse-creation templates: resize the registered variables to
   _newsize, set N, and number multiple synapses between the same pair. #}
    {% for varname in _registered_variables | variables_to_array_names(access_data=False) | sort %}
    {{ varname }}_ptr->resize(_newsize);
    {% endfor %}
    {{ N }} = _newsize;
    {% if multisynaptic_index %}
    {
        std::map<std::pair<int32_t, int32_t>, int32_t> _source_target_count;
        int32_t* _synapse_number = {{ get_array_name(variables[multisynaptic_index], access_data=False) }}_ptr->get_data_ptr();
        for (size_t _i = 0; _i < _newsize; _i++) {
            int32_t& _count = _source_target_count[std::make_pair(_synaptic_pre_data[_i], _synaptic_post_data[_i])];
            _synapse_number[_i] = _count++;
        }
    }
    {% endif %}
