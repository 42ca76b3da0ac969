"""Intent classification: fast, local, weighted keyword and phrase patterns (pt-BR and English).

The text is normalised (lower case, no accents, punctuation to spaces) so "Preço", "preco" and
"PRECO" match alike. Each intent has patterns in three weights; the intent with the highest score
wins, ties go to the intent listed first in :data:`PRIORITY`. A greeting only wins when nothing
else matched ("oi, quanto custa?" is about pricing). Typical cost: tens of microseconds.
"""

from __future__ import annotations

import re
import unicodedata
from functools import lru_cache

INTENTS = (
    "service_inquiry",
    "navigation_help",
    "provider_questions",
    "pricing",
    "account",
    "complaint",
    "greeting",
    "human_request",
    "other",
)
# Tie-break order: the more specific or urgent need first.
PRIORITY = (
    "human_request",
    "complaint",
    "provider_questions",
    "pricing",
    "account",
    "navigation_help",
    "service_inquiry",
    "greeting",
)

_SERVICES = (
    r"diarist\w*|faxin\w*|limpeza|eletricist\w*|encanador\w*|pintor\w*|pintura|pedreir\w*|"
    r"reforma\w*|montador\w*|montagem|mudanca\w*|frete\w*|jardin\w*|manicure|cabeleireir\w*|"
    r"baba|cuidador\w*|passadeir\w*|conserto|reparo\w*|instala\w*|ar condicionado|dedetiza\w*|"
    r"chaveiro|marido de aluguel|tecnico|cleaner|cleaning|plumber|electrician|painter|"
    r"handyman|movers?|moving|gardener|babysitter|nanny"
)

# intent -> {weight: [regex alternatives on normalised text]}
PATTERNS: dict[str, dict[int, list[str]]] = {
    "human_request": {
        4: [
            r"falar com (um |uma |o |a |algum |alguma )?(atendente|humano|pessoa|alguem|"
            r"operador\w*|gerente|suporte|responsavel|funcionario)",
            r"atendimento humano|atendente humano|pessoa de verdade|pessoa real|ser humano",
            r"(talk|speak|chat) (to|with) (a |an |some |the )?(human|person|agent|someone|"
            r"representative|manager|support|real)",
            r"real person|human agent|live agent|live person",
        ],
        2: [
            r"\batendente\b|\bhumano\b|\boperador\b|transferir|me liga|ligue para mim|"
            r"telefone (do|de) (suporte|atendimento|contato)|\bsac\b|whatsapp",
            r"customer service|call me|phone number|contact support|support team|\bmanager\b|"
            r"supervisor|\bgerente\b",
        ],
    },
    "complaint": {
        3: [
            r"reclama\w*|pessim\w*|horrivel|absurd\w*|vergonha|descaso|golpe|fraude|procon|"
            r"nao (apareceu|compareceu|veio)|ninguem (apareceu|veio)|mal feito|malfeito|"
            r"insatisfeit\w*|decepcion\w*|grosseir\w*|mal educad\w*|cobrad\w* (duas|2) vezes|"
            r"nunca mais|estragou|danific\w*|quebrou|pior (servico|atendimento)",
            r"complain\w*|terrible|awful|horrible|worst|scam|fraud|unacceptable|rude|"
            r"never (showed|came|arrived)|didn ?t (show|come)|no show|charged twice|"
            r"broke my|damaged|disappointed|ripped off",
        ],
        1: [r"atras\w*|reembols\w*|estorno|problema|refund|late\b|problem|issue"],
    },
    "provider_questions": {
        4: [
            r"(ser|virar|me tornar|tornar me|trabalhar como|atuar como|me cadastrar como|"
            r"cadastrar como|sou) (um |uma )?(prestador\w*|profissional|parceir\w*|"
            + _SERVICES
            + r")",
            r"(become|be|work as|sign up as|register as|join as|i am|i m) (a |an )?(provider|"
            r"professional|partner|pro\b|" + _SERVICES + r")",
            r"(oferecer|anunciar|divulgar|cadastrar) (os )?(meus|minhas) (servicos|trabalhos)",
            r"cadastrar (pra|para) (dar|oferecer|fazer|trabalhar|atender|prestar)|dar aulas?\b",
            r"offer my services|list my services|advertise my",
        ],
        3: [
            r"trabalhar (com|para|no|na) (voces|o site|a plataforma|aqui)|"
            r"quero trabalhar|receb\w* pedidos|meus clientes|repasse|\bsaque\b|sacar|comissao|"
            r"taxa (da|de) plataforma|autonomo",
            r"\bprovider\w*|work (with|for) you|payouts?|commission|my clients|get (more )?jobs|"
            r"receive (jobs|requests)",
        ],
        2: [r"prestador\w*"],
    },
    "pricing": {
        3: [
            r"(quanto|qto|qnto|qnt) (custa|custam|e|sai|fica|cobra\w*|vale|pago|vou pagar)|"
            r"\bcusta\b|\bcustam\b|\bpreco\w*|"
            r"\bvalor\w*|orcamento\w*|\bcusto\w*|forma\w* de pagamento|\bpix\b|boleto|"
            r"parcel\w*|cartao de credito|desconto\w*|cupo\w*",
            r"how much|\bprices?\b|\bpricing\b|\bcosts?\b|\bfees?\b|payment\w*|credit card|"
            r"discount\w*|coupon\w*|\bquote\b|installments?",
        ],
        1: [r"\bpag\w*|\bcaro\b|barat\w*|\btaxa\w*|cobranca|\bpay\b|\bpaid\b|expensive|cheap"],
    },
    "account": {
        3: [
            r"minha conta|\bsenha\b|\blogin\b|\blogar\b|"
            r"entrar na (minha )?conta|criar (uma )?conta|"
            r"(excluir|apagar|deletar|encerrar) (a )?(minha )?conta|esqueci|nao consigo entrar|"
            r"(alterar|altero|mudar|mudo|trocar|troco) (o |a |meu |minha )?"
            r"(e ?mail|telefone|dados|endereco|nome|cpf)|"
            r"atualizar (os )?(meus )?dados|codigo de verificacao|meus pedidos|"
            r"cancelar (o |meu |minha |um |uma )?(pedido|agendamento|servico|contratacao)|"
            r"remarcar|reagendar",
            r"my account|password|log ?in|sign ?in|sign up|create an account|"
            r"delete (my )?account|reset|verification code|change my (email|phone|address|name)|"
            r"my orders|my bookings|cancel (my |an |the )?(order|booking|appointment)|reschedule",
        ],
        1: [r"cadastr\w*|perfil|\bdados\b|account|profile|register"],
    },
    "navigation_help": {
        3: [
            r"onde (fica|ficam|encontro|acho|vejo|esta|estao|clico|posso ver)|"
            r"\bcade\b|(nao|nao consigo) (acho|encontro|achar|encontrar)|"
            r"como (acho|encontro|chego|acesso|"
            r"volto|navego)|pagina (nao|de erro|inicial)|erro 404|\b404\b|link (quebrado|nao)",
            r"where (is|are|can i|do i)|can ?t find|cannot find|how do i (find|get to|access|go)|"
            r"page (not|doesn ?t)|broken link|not found",
        ],
        1: [
            r"\bpagina\b|\bmenu\b|\bbotao\b|\bclicar\b|\baba\b|\btela\b|\bpage\b|\bbutton\b|"
            r"\bclick\b|\btab\b|\bnavigat\w*"
        ],
    },
    "service_inquiry": {
        3: [
            r"contratar|contrato um|como contrat\w*|preciso de (um|uma)|"
            r"procur\w* (um|uma|por|alguem)|"
            r"(pra|para) montar|"
            r"(quais|que) servicos|voces (fazem|tem|oferecem)|tem (algum|alguem|profissional)|"
            r"agendar|marcar (um|uma)|disponivel|disponibilidade|atende\w* (na|no|em)",
            r"\bhire\b|\bbook\b|looking for|i need (a|an|someone)|what services|"
            r"do you (offer|have)|"
            r"available|availability|schedule a",
        ],
        2: [r"\b(" + _SERVICES + r")\b"],
        1: [r"\bservico\w*|\bservices?\b|profissiona\w*|professional"],
    },
    "greeting": {
        1: [
            r"^(oi+|ola|bom dia|boa tarde|boa noite|e ai|eai|opa|salve|hello|hi+|hey|"
            r"good (morning|afternoon|evening)|tudo bem)\b",
            r"obrigad\w*|valeu|tchau|thanks|thank you|\bbye\b",
        ],
    },
}

_COMPILED: dict[str, list[tuple[int, re.Pattern[str]]]] = {
    intent: [(weight, re.compile("|".join(alts))) for weight, alts in levels.items()]
    for intent, levels in PATTERNS.items()
}
_NON_WORD = re.compile(r"[^a-z0-9]+")


def normalise(text: str) -> str:
    """Lower case, no accents, punctuation and symbols to single spaces."""
    decomposed = unicodedata.normalize("NFKD", text.lower())
    plain = "".join(ch for ch in decomposed if not unicodedata.combining(ch))
    return _NON_WORD.sub(" ", plain).strip()


def scores(text: str) -> dict[str, int]:
    """Each intent's score for ``text`` (only intents with a match)."""
    norm = normalise(text)[:600]
    found: dict[str, int] = {}
    for intent, levels in _COMPILED.items():
        # Presence, not counts: a long message naming three services is no more about them.
        score = sum(weight for weight, rx in levels if rx.search(norm))
        if score:
            found[intent] = score
    return found


@lru_cache(maxsize=4096)
def classify(text: str, language: str = "pt-br") -> str:
    """Return the intent of a user message: one of :data:`INTENTS`.

    ``language`` is accepted for the seam's sake: the patterns cover pt-BR and English at once,
    because users mix them.
    """
    found = scores(text)
    if not found:
        return "other"
    if len(found) > 1:
        found.pop("greeting", None)
    best = max(found.values())
    for intent in PRIORITY:
        if found.get(intent) == best:
            return intent
    return "other"  # pragma: no cover - every scored intent is in PRIORITY
