{# USES_VARIABLES { _queue_capsule } #}
{# The before_run block (initialising the queue) is Python: SoBuildCodeObject runs
   _owner.initialise_queue() itself. #}
{% extends 'common_group.cpp' %}

{% block maincode %}
    {% set _eventspace = get_array_name(eventspace_variable) %}
    const int32_t _spike_count = {{ _eventspace }}[_num{{ eventspace_variable.name }} - 1];
    if (_spike_count > 0)
        _queue->push({{ _eventspace }}, _spike_count);
{% endblock %}
