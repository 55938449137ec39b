{# The base of sobuild's C++ runtime templates (Brian2's cython_rt structure, in C++).
   Each block is one kernel `int run(void* const* _args)`; the code object replaces
   %SOBUILD_ARGUMENTS% with the lines that bind its argument block. Kernels include
   sobuild_brian.h alone (see support_library.py). #}
{% macro kernel_head() %}
{# one prologue for every kernel of every model: its precompiled header is kept in the cache #}
{{ kernel_prologue }}

// support code
{{ support_code_lines | autoindent }}

// template support code
{% block template_support_code %}
{% endblock %}

// hash defines
{{ hashdefine_lines | autoindent }}
{% endmacro %}

{% macro before_run() %}
{{ kernel_head() }}
int run(void* const* _args)
{
    %SOBUILD_ARGUMENTS%
    {{ pointers_lines | autoindent }}
    try {
    {% block before_code %}
    // EMPTY_CODE_BLOCK  -- overwrite in child template
    {% endblock %}
    } SOBUILD_CATCH
    return 0;
}
{% endmacro %}

{% macro run() %}
{{ kernel_head() }}
int run(void* const* _args)
{
    %SOBUILD_ARGUMENTS%
    {{ pointers_lines | autoindent }}
    {{ denormals_code_lines | autoindent }}
    try {
    {% block maincode %}
    {% endblock %}
    } SOBUILD_CATCH
    return 0;
}
{% endmacro %}

{% macro after_run() %}
{{ kernel_head() }}
int run(void* const* _args)
{
    %SOBUILD_ARGUMENTS%
    {{ pointers_lines | autoindent }}
    try {
    {% block after_code %}
    // EMPTY_CODE_BLOCK  -- overwrite in child template
    {% endblock %}
    } SOBUILD_CATCH
    return 0;
}
{% endmacro %}
