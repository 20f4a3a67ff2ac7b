# Warnings are errors on the project's own targets (never on generated code).
function(bert_target_warnings target)
  target_compile_options(${target} PRIVATE -Wall -Wextra -Werror -Wno-unused-parameter)
endfunction()
