# bash completion for coraclectl: verbs, resource types, flags, and object
# names (asked of the server with `coraclectl get TYPE -o name`).
# Install: source it, or copy it to /usr/share/bash-completion/completions/coraclectl.

_coraclectl_names()
{
    # $1: resource type; the global flags typed so far are passed along
    local type=$1 i args=()
    for ((i = 1; i < ${#COMP_WORDS[@]} - 1; i++)); do
        case ${COMP_WORDS[i]} in
        -s | --server | -n | --namespace | --token | --kubeconfig | --certificate-authority | \
            --client-certificate | --client-key)
            args+=("${COMP_WORDS[i]}" "${COMP_WORDS[i + 1]}")
            ;;
        --server=* | --namespace=* | --token=* | --kubeconfig=* | --certificate-authority=* | \
            --client-certificate=* | --client-key=*)
            args+=("${COMP_WORDS[i]}")
            ;;
        esac
    done
    coraclectl "${args[@]}" get "$type" -o name 2>/dev/null | sed 's|^[^/]*/||'
}

_coraclectl()
{
    local cur prev verb i
    COMPREPLY=()
    cur=${COMP_WORDS[COMP_CWORD]}
    prev=${COMP_WORDS[COMP_CWORD - 1]}
    local verbs="apply create get describe delete scale rollout logs exec attach image version"
    local types="pods po nodes no events ev leases namespaces ns configmaps cm secrets serviceaccounts sa replicasets rs deployments deploy daemonsets ds jobs cronjobs cj"
    local global="--server --namespace --token --kubeconfig --certificate-authority --client-certificate --client-key --help"

    for ((i = 1; i < COMP_CWORD; i++)); do
        case ${COMP_WORDS[i]} in
        -s | --server | -n | --namespace | --token | --kubeconfig | --certificate-authority | \
            --client-certificate | --client-key) ((i++)) ;;
        -*) ;;
        *)
            verb=${COMP_WORDS[i]}
            break
            ;;
        esac
    done

    case $prev in
    --kubeconfig | --certificate-authority | --client-certificate | --client-key)
        compopt -o filenames 2>/dev/null
        COMPREPLY=($(compgen -f -- "$cur"))
        return
        ;;
    -f | --filename)
        compopt -o filenames 2>/dev/null
        COMPREPLY=($(compgen -f -X '!*.@(yaml|yml|json)' -- "$cur") $(compgen -d -- "$cur") -)
        return
        ;;
    -o | --output)
        COMPREPLY=($(compgen -W "wide yaml json name jsonpath= jsonpath-as-json= jsonpath-file= custom-columns=" -- "$cur"))
        [[ ${#COMPREPLY[@]} -eq 1 && ${COMPREPLY[0]} == *= ]] && compopt -o nospace 2>/dev/null
        return
        ;;
    -n | --namespace)
        COMPREPLY=($(compgen -W "default kube-system kube-node-lease" -- "$cur"))
        return
        ;;
    -s | --server | --token | -l | --selector | --field-selector | --grace-period | --tail)
        return
        ;;
    -c | --container)
        return
        ;;
    esac

    if [[ -z $verb ]]; then
        COMPREPLY=($(compgen -W "$verbs $global" -- "$cur"))
        return
    fi

    local flags
    case $verb in
    apply) flags="-f --filename" ;;
    create) flags="-f --filename --save-config" ;;
    get) flags="-o --output -l --selector --field-selector -A --all-namespaces -w --watch --watch-only --no-headers --show-labels --allow-missing-template-keys" ;;
    describe) flags="-l --selector" ;;
    delete) flags="-f --filename --grace-period --force --wait --ignore-not-found --all -l --selector" ;;
    logs) flags="-f --follow -c --container -p --previous --tail" ;;
    exec) flags="-i --stdin -t --tty -c --container" ;;
    image) flags="--tag --image-dir -q --force" ;;
    version) flags="--client" ;;
    esac
    if [[ $cur == -* ]]; then
        COMPREPLY=($(compgen -W "$flags $global" -- "$cur"))
        return
    fi

    # positional arguments after the verb
    local args=() j
    for ((j = i + 1; j < COMP_CWORD; j++)); do
        case ${COMP_WORDS[j]} in
        -s | --server | -n | --namespace | --token | -o | --output | -l | --selector | \
            --field-selector | -c | --container | --grace-period | --tail | -f | --filename | \
            --kubeconfig | --certificate-authority | --client-certificate | --client-key)
            ((j++))
            ;;
        -*) ;;
        *) args+=("${COMP_WORDS[j]}") ;;
        esac
    done
    case $verb in
    get | delete | describe)
        if ((${#args[@]} == 0)); then
            COMPREPLY=($(compgen -W "$types" -- "$cur"))
        else
            COMPREPLY=($(compgen -W "$(_coraclectl_names "${args[0]}")" -- "$cur"))
        fi
        ;;
    logs | exec)
        if ((${#args[@]} == 0)); then
            COMPREPLY=($(compgen -W "$(_coraclectl_names pods)" -- "$cur"))
        fi
        ;;
    image)
        if ((${#args[@]} == 0)); then
            COMPREPLY=($(compgen -W "import ls rm" -- "$cur"))
        else
            compopt -o filenames 2>/dev/null
            COMPREPLY=($(compgen -f -- "$cur"))
        fi
        ;;
    esac
}
complete -F _coraclectl coraclectl
